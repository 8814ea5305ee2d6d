// SPDX-License-Identifier: Apache-2.0
import Foundation

/// One device's upgrade task as the read actions list it (`SimpleOTATaskInfo`), the fields the worker uses.
public struct OTATaskInfo: Sendable, Hashable {
    public var taskId: String
    /// `CONFIRM`, `QUEUED`, `NOTIFIED`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED` or `CANCELED` (kept as sent).
    public var taskStatus: String
    public var deviceName: String
    public var productKey: String
    public var firmwareId: String
    public var jobId: String

    public init(
        taskId: String,
        taskStatus: String,
        deviceName: String,
        productKey: String = "",
        firmwareId: String = "",
        jobId: String = ""
    ) {
        self.taskId = taskId
        self.taskStatus = taskStatus
        self.deviceName = deviceName
        self.productKey = productKey
        self.firmwareId = firmwareId
        self.jobId = jobId
    }
}

/// The tasks of one successful read answer, with its paging figures when it has them.
public struct OTATaskPage: Sendable, Hashable {
    public var tasks: [OTATaskInfo]
    /// `Total`: tasks matching over all pages (`ListOTATaskByJob` only).
    public var total: Int?
    /// `PageCount` (`ListOTATaskByJob` only).
    public var pageCount: Int?

    public init(tasks: [OTATaskInfo], total: Int? = nil, pageCount: Int? = nil) {
        self.tasks = tasks
        self.total = total
        self.pageCount = pageCount
    }

    /// Reads `Data.SimpleOTATaskInfo` (and `Total`, `PageCount`) from a successful answer's body.
    ///
    /// Keys are matched case-insensitively, as for every answer (Tuya's copy writes lower camel case). `Data`
    /// may be missing or `null` (no task), or a bare list.
    /// - Throws: ``PlatformAPIError/Code/invalidResponse`` when the body is not a JSON object or a task lacks
    ///   `DeviceName` or `TaskStatus`: an answer that cannot be read must not read as "no task".
    public static func parse(_ response: PlatformResponse) throws(PlatformAPIError) -> OTATaskPage {
        func invalid(_ why: String) -> PlatformAPIError {
            PlatformAPIError(
                code: .invalidResponse,
                message: "a task list answer that cannot be read: \(why)",
                requestId: response.requestId,
                httpStatus: response.httpStatus
            )
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] else {
            throw invalid("the body is not a JSON object")
        }
        let top = lowered(object)
        var items: [Any] = []
        switch top["data"] {
        case nil, is NSNull:
            break
        case let list as [Any]:
            items = list
        case let data as [String: Any]:
            switch lowered(data)["simpleotataskinfo"] {
            case nil, is NSNull: break
            case let list as [Any]: items = list
            default: throw invalid("Data.SimpleOTATaskInfo is not a list")
            }
        default:
            throw invalid("Data is neither an object nor a list")
        }
        var tasks = [OTATaskInfo]()
        tasks.reserveCapacity(items.count)
        for item in items {
            guard let fields = (item as? [String: Any]).map(lowered) else { throw invalid("a task is not an object") }
            guard let deviceName = text(fields["devicename"]), let status = text(fields["taskstatus"]) else {
                throw invalid("a task without DeviceName or TaskStatus")
            }
            tasks.append(
                OTATaskInfo(
                    taskId: text(fields["taskid"]) ?? "",
                    taskStatus: status,
                    deviceName: deviceName,
                    productKey: text(fields["productkey"]) ?? "",
                    firmwareId: text(fields["firmwareid"]) ?? "",
                    jobId: text(fields["jobid"]) ?? ""
                )
            )
        }
        return OTATaskPage(tasks: tasks, total: integer(top["total"]), pageCount: integer(top["pagecount"]))
    }

    private static func lowered(_ object: [String: Any]) -> [String: Any] {
        var result = [String: Any](minimumCapacity: object.count)
        for key in object.keys.sorted() where result[key.lowercased()] == nil { result[key.lowercased()] = object[key] }
        return result
    }

    private static func text(_ value: Any?) -> String? {
        switch value {
        case let string as String: string
        case let number as NSNumber: number.stringValue
        default: nil
        }
    }

    private static func integer(_ value: Any?) -> Int? {
        switch value {
        case let number as NSNumber: number.intValue
        case let string as String: Int(string)
        default: nil
        }
    }
}

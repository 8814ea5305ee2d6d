// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import JSONSchema

/// A reply, as `schemas/cancel-result.schema.json` defines it.
///
/// Serialised by ``jsonValue`` with a fixed key order, so the same reply always has the same bytes
/// (a stored reply published again is identical to the first).
public struct CancelReply: Sendable, Hashable {
    /// The outcome, one of the contract's five words.
    public enum Status: String, Sendable, Hashable {
        case succeeded, partial, failed, rejected, expired
    }

    /// One reason a command was rejected.
    public struct Problem: Sendable, Hashable {
        /// Stable code: `SchemaViolation`, `InvalidJSON`, `PayloadTooLarge`, `ReplyTopicNotAllowed`, ...
        public var code: String
        /// JSON Pointer into the command ("" for the whole payload).
        public var instanceLocation: String
        /// JSON Pointer into the command schema, or `#worker/<rule>` for a rule of the worker's own.
        public var keywordLocation: String
        public var absoluteKeywordLocation: String?
        public var message: String

        public init(
            code: String,
            instanceLocation: String,
            keywordLocation: String,
            absoluteKeywordLocation: String? = nil,
            message: String
        ) {
            self.code = code
            self.instanceLocation = instanceLocation
            self.keywordLocation = keywordLocation
            self.absoluteKeywordLocation = absoluteKeywordLocation
            self.message = message
        }
    }

    /// A platform call that did not succeed, with the platform's own account of why.
    public struct FailedGroup: Sendable, Hashable {
        public var deviceNames: [String]
        public var code: String
        public var message: String
        public var requestId: String?
        public var httpStatus: Int?
        public var transient: Bool
        public var attempts: Int

        public init(
            deviceNames: [String],
            code: String,
            message: String,
            requestId: String?,
            httpStatus: Int?,
            transient: Bool,
            attempts: Int
        ) {
            self.deviceNames = deviceNames
            self.code = code
            self.message = message
            self.requestId = requestId
            self.httpStatus = httpStatus
            self.transient = transient
            self.attempts = attempts
        }
    }

    /// A call a dry run would make.
    public struct PlannedCall: Sendable, Hashable {
        public var method: String
        public var deviceNames: [String]
        public var stringToSign: String

        public init(method: String, deviceNames: [String], stringToSign: String) {
            self.method = method
            self.deviceNames = deviceNames
            self.stringToSign = stringToSign
        }
    }

    /// Why some devices are `unverified`: one entry per code.
    public struct UnverifiedReason: Sendable, Hashable {
        public var code: String
        public var message: String
        public var deviceCount: Int

        public init(code: String, message: String, deviceCount: Int) {
            self.code = code
            self.message = message
            self.deviceCount = deviceCount
        }
    }

    /// The read-back: every device of the command in exactly one group, in the command's order.
    public struct DeviceGroups: Sendable, Hashable {
        public var canceled: [String] = []
        public var alreadyUpgraded: [String] = []
        public var failed: [String] = []
        public var stillActive: [String] = []
        public var noTask: [String] = []
        public var unverified: [String] = []
        public var unverifiedReasons: [UnverifiedReason] = []
        /// Read calls that carried this command's devices.
        public var reads = 0
        /// Their `RequestId`s.
        public var requestIds: [String] = []

        public init() {}
    }

    /// The reply format's version: 2 since the `devices` section (version 1 replies, stored by an older worker,
    /// may still be replayed for a duplicate).
    public static let version = 2

    public var correlationId: String?
    public var status: Status
    public var duplicate: Bool?
    public var productKey: String?
    public var firmwareId: String?
    public var jobId: String?
    public var iotInstanceId: String?
    public var reason: String?
    public var requestedBy: String?
    public var dryRun: Bool?
    public var deviceCount: Int?
    public var cancelledDevices: [String]?
    /// What the read-back found, when the command was read back.
    public var devices: DeviceGroups?
    public var failedGroups: [FailedGroup]?
    public var plannedCalls: [PlannedCall]?
    public var calls: Int?
    /// How many of ``calls`` also carried other commands' devices (coalescing).
    public var sharedCalls: Int?
    public var attempts: Int?
    public var requestIds: [String]?
    public var errors: [Problem]?
    public var deadline: Date?
    public var receivedAt: Date
    public var completedAt: Date

    public init(correlationId: String?, status: Status, receivedAt: Date, completedAt: Date) {
        self.correlationId = correlationId
        self.status = status
        self.receivedAt = receivedAt
        self.completedAt = completedAt
    }

    /// Copies the identifiers and audit fields of a command into the reply.
    public mutating func echo(_ command: CancelCommand) {
        productKey = command.productKey
        firmwareId = command.firmwareId
        jobId = command.jobId
        iotInstanceId = command.iotInstanceId
        reason = command.reason
        requestedBy = command.requestedBy
        deviceCount = command.deviceNames.count
        deadline = command.deadline ?? deadline
        if command.dryRun { dryRun = true }
    }

    /// The reply as JSON, keys in the schema's order, absent fields left out.
    public var jsonValue: JSONValue {
        var object = JSONObject()
        object["version"] = .number(JSONNumber(Self.version))
        object["correlationId"] = correlationId.map { JSONValue.string($0) } ?? .null
        object["status"] = .string(status.rawValue)
        if let duplicate { object["duplicate"] = .bool(duplicate) }
        object["productKey"] = productKey.map(JSONValue.string)
        object["firmwareId"] = firmwareId.map(JSONValue.string)
        object["jobId"] = jobId.map(JSONValue.string)
        object["iotInstanceId"] = iotInstanceId.map(JSONValue.string)
        object["reason"] = reason.map(JSONValue.string)
        object["requestedBy"] = requestedBy.map(JSONValue.string)
        if let dryRun { object["dryRun"] = .bool(dryRun) }
        if let deviceCount { object["deviceCount"] = .number(JSONNumber(deviceCount)) }
        if let cancelledDevices { object["cancelledDevices"] = .strings(cancelledDevices) }
        if let devices { object["devices"] = devices.jsonValue }
        if let failedGroups {
            object["failedGroups"] = .array(
                failedGroups.map { group in
                    var entry = JSONObject()
                    entry["deviceNames"] = .strings(group.deviceNames)
                    entry["code"] = .string(group.code)
                    entry["message"] = .string(group.message)
                    entry["requestId"] = group.requestId.map(JSONValue.string)
                    if let status = group.httpStatus { entry["httpStatus"] = .number(JSONNumber(status)) }
                    entry["transient"] = .bool(group.transient)
                    entry["attempts"] = .number(JSONNumber(group.attempts))
                    return .object(entry)
                }
            )
        }
        if let plannedCalls {
            object["plannedCalls"] = .array(
                plannedCalls.map { call in
                    var entry = JSONObject()
                    entry["method"] = .string(call.method)
                    entry["deviceNames"] = .strings(call.deviceNames)
                    entry["stringToSign"] = .string(call.stringToSign)
                    return .object(entry)
                }
            )
        }
        if let calls { object["calls"] = .number(JSONNumber(calls)) }
        if let sharedCalls { object["sharedCalls"] = .number(JSONNumber(sharedCalls)) }
        if let attempts { object["attempts"] = .number(JSONNumber(attempts)) }
        if let requestIds { object["requestIds"] = .strings(requestIds) }
        if let errors {
            object["errors"] = .array(
                errors.map { problem in
                    var entry = JSONObject()
                    entry["code"] = .string(problem.code)
                    entry["instanceLocation"] = .string(problem.instanceLocation)
                    entry["keywordLocation"] = .string(problem.keywordLocation)
                    entry["absoluteKeywordLocation"] = problem.absoluteKeywordLocation.map(JSONValue.string)
                    entry["message"] = .string(problem.message)
                    return .object(entry)
                }
            )
        }
        if let deadline { object["deadline"] = .string(RFC3339.string(from: deadline)) }
        object["receivedAt"] = .string(RFC3339.string(from: receivedAt))
        object["completedAt"] = .string(RFC3339.string(from: completedAt))
        return .object(object)
    }
}

extension CancelReply.DeviceGroups {
    /// The `devices` object, every group present (empty or not) so that a consumer need not guess.
    var jsonValue: JSONValue {
        var object = JSONObject()
        object["canceled"] = .strings(canceled)
        object["alreadyUpgraded"] = .strings(alreadyUpgraded)
        object["failed"] = .strings(failed)
        object["stillActive"] = .strings(stillActive)
        object["noTask"] = .strings(noTask)
        object["unverified"] = .strings(unverified)
        if !unverifiedReasons.isEmpty {
            object["unverifiedReasons"] = .array(
                unverifiedReasons.map { reason in
                    var entry = JSONObject()
                    entry["code"] = .string(reason.code)
                    entry["message"] = .string(reason.message)
                    entry["deviceCount"] = .number(JSONNumber(reason.deviceCount))
                    return .object(entry)
                }
            )
        }
        object["reads"] = .number(JSONNumber(reads))
        object["requestIds"] = .strings(requestIds)
        return .object(object)
    }
}

extension JSONValue {
    /// An array of strings.
    static func strings(_ values: [String]) -> JSONValue {
        .array(values.map(JSONValue.string))
    }
}

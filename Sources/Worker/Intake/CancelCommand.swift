// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import JSONSchema

/// A validated "cancel these upgrades" command (the payload of `schemas/cancel-command.schema.json`).
public struct CancelCommand: Sendable, Hashable {
    public var productKey: String
    public var firmwareId: String
    public var deviceNames: [String]
    public var jobId: String?
    public var iotInstanceId: String?
    public var correlationId: String?
    public var replyTo: String?
    public var deadline: Date?
    public var dryRun: Bool
    /// `verify`: read the devices' tasks back after the cancel; `nil` leaves it to `--verify`.
    public var verify: Bool?
    public var reason: String?
    public var requestedBy: String?

    public init(
        productKey: String,
        firmwareId: String,
        deviceNames: [String],
        jobId: String? = nil,
        iotInstanceId: String? = nil,
        correlationId: String? = nil,
        replyTo: String? = nil,
        deadline: Date? = nil,
        dryRun: Bool = false,
        verify: Bool? = nil,
        reason: String? = nil,
        requestedBy: String? = nil
    ) {
        self.productKey = productKey
        self.firmwareId = firmwareId
        self.deviceNames = deviceNames
        self.jobId = jobId
        self.iotInstanceId = iotInstanceId
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.deadline = deadline
        self.dryRun = dryRun
        self.verify = verify
        self.reason = reason
        self.requestedBy = requestedBy
    }

    /// Reads a command from a payload that has already passed the schema.
    ///
    /// - Returns: `nil` if a required field is missing or has the wrong type, which the schema rules out;
    ///   the caller treats that as an internal inconsistency, not as bad input.
    public init?(validated value: JSONValue) {
        guard let productKey = value["productKey"]?.stringValue,
            let firmwareId = value["firmwareId"]?.stringValue,
            let names = value["deviceNames"]?.arrayValue
        else { return nil }
        var deviceNames = [String]()
        deviceNames.reserveCapacity(names.count)
        for name in names {
            guard let name = name.stringValue else { return nil }
            deviceNames.append(name)
        }
        var deadline: Date?
        if let text = value["deadline"]?.stringValue {
            guard let parsed = RFC3339.date(from: text) else { return nil }
            deadline = parsed
        }
        self.init(
            productKey: productKey,
            firmwareId: firmwareId,
            deviceNames: deviceNames,
            jobId: value["jobId"]?.stringValue,
            iotInstanceId: value["iotInstanceId"]?.stringValue,
            correlationId: value["correlationId"]?.stringValue,
            replyTo: value["replyTo"]?.stringValue,
            deadline: deadline,
            dryRun: value["dryRun"]?.boolValue ?? false,
            verify: value["verify"]?.boolValue,
            reason: value["reason"]?.stringValue,
            requestedBy: value["requestedBy"]?.stringValue
        )
    }
}

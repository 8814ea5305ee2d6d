// SPDX-License-Identifier: Apache-2.0

/// One `CancelOTATaskByDevice` call: which devices' upgrade tasks of which firmware to cancel.
///
/// The operation parameters only; the common ones (`AccessKeyId`, `Timestamp`, ...) are added per attempt
/// by ``PlatformAPIClient``, because every attempt needs a fresh nonce and timestamp.
public struct CancelOTATaskByDeviceRequest: Sendable, Hashable {
    /// `ProductKey`: the product the devices belong to.
    public var productKey: String
    /// `FirmwareId`: the OTA package whose pending tasks are cancelled.
    public var firmwareId: String
    /// `DeviceName.1` ... `DeviceName.N`, in this order; at most 200 per call on the real platform.
    public var deviceNames: [String]
    /// `JobId`: restricts the cancel to one upgrade batch. `nil` or empty is not sent.
    public var jobId: String?
    /// `IotInstanceId`: overrides the configured instance. `nil` or empty is not sent (the configured one is).
    public var iotInstanceId: String?

    /// Creates a request; `jobId` and `iotInstanceId` default to `nil` (not sent).
    public init(
        productKey: String,
        firmwareId: String,
        deviceNames: [String],
        jobId: String? = nil,
        iotInstanceId: String? = nil
    ) {
        self.productKey = productKey
        self.firmwareId = firmwareId
        self.deviceNames = deviceNames
        self.jobId = jobId
        self.iotInstanceId = iotInstanceId
    }

    /// Splits a device list into requests of at most `maxPerCall` names each, order preserved.
    ///
    /// The platform takes at most 200 names per call, while a command may name thousands; each batch becomes
    /// its own call with its own `DeviceName.1..N` numbering.
    /// - Parameters:
    ///   - maxPerCall: batch size; default 200 (the platform's limit); values below 1 count as 1.
    /// - Returns: `ceil(count / maxPerCall)` requests sharing the other fields; empty for an empty list.
    public static func batches(
        productKey: String,
        firmwareId: String,
        deviceNames: [String],
        jobId: String?,
        iotInstanceId: String?,
        maxPerCall: Int = 200
    ) -> [CancelOTATaskByDeviceRequest] {
        let size = max(1, maxPerCall)
        return stride(from: 0, to: deviceNames.count, by: size).map { start in
            CancelOTATaskByDeviceRequest(
                productKey: productKey,
                firmwareId: firmwareId,
                deviceNames: Array(deviceNames[start..<min(start + size, deviceNames.count)]),
                jobId: jobId,
                iotInstanceId: iotInstanceId
            )
        }
    }

    /// `Action`, `ProductKey`, `FirmwareId`, `DeviceName.1...N`, `JobId`?, `IotInstanceId`?: exactly what is
    /// sent and signed for this operation (the client adds the common parameters and the configured
    /// `IotInstanceId` when this request has none).
    public func operationParameters() -> [String: String] {
        var parameters: [String: String] = [
            "Action": "CancelOTATaskByDevice",
            "ProductKey": productKey,
            "FirmwareId": firmwareId,
        ]
        parameters.reserveCapacity(deviceNames.count + 5)
        for (index, name) in deviceNames.enumerated() {
            parameters["DeviceName.\(index + 1)"] = name
        }
        if let jobId, !jobId.isEmpty { parameters["JobId"] = jobId }
        if let iotInstanceId, !iotInstanceId.isEmpty { parameters["IotInstanceId"] = iotInstanceId }
        return parameters
    }
}

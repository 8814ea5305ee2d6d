// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import PlatformAPI
import PlatformSignature

/// Executes an accepted command: plans the platform calls (at most 200 devices each), makes them through
/// the platform client (which paces, retries and re-signs), and builds the reply.
public struct CommandExecutor: Sendable {
    private let platform: PlatformAPIClient
    private let maxDeviceNamesPerCall: Int
    private let method: RPCHTTPMethod
    private let now: @Sendable () -> Date

    public init(
        platform: PlatformAPIClient,
        platformConfiguration: PlatformAPIConfiguration,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.platform = platform
        self.maxDeviceNamesPerCall = platformConfiguration.maxDeviceNamesPerCall
        self.method = platformConfiguration.method
        self.now = now
    }

    /// Runs the command to its reply. Never throws: every outcome, failures included, is a reply.
    public func execute(_ accepted: AcceptedCommand) async -> CancelReply {
        let command = accepted.command
        let batches = CancelOTATaskByDeviceRequest.batches(
            productKey: command.productKey,
            firmwareId: command.firmwareId,
            deviceNames: command.deviceNames,
            jobId: command.jobId,
            iotInstanceId: command.iotInstanceId,
            maxPerCall: maxDeviceNamesPerCall
        )
        var reply = CancelReply(correlationId: accepted.correlationId, status: .succeeded, receivedAt: accepted.receivedAt, completedAt: accepted.receivedAt)
        reply.echo(command)
        reply.deadline = accepted.deadline

        if command.dryRun {
            let timestamp = now()
            reply.plannedCalls = batches.map { batch in
                let signed = platform.signedRequest(for: batch, timestamp: timestamp, nonce: RPCNonce.make())
                return .init(method: method.rawValue, deviceNames: batch.deviceNames, stringToSign: signed.stringToSign)
            }
            reply.cancelledDevices = []
            reply.calls = 0
            reply.attempts = 0
            reply.completedAt = now()
            return reply
        }

        if let deadline = accepted.deadline, deadline <= now() {
            reply.status = .expired
            reply.completedAt = now()
            return reply
        }
        let clockDeadline = accepted.deadline.map { ContinuousClock.now + .seconds($0.timeIntervalSince(now())) }

        let results = await withTaskGroup(of: (Int, PlatformCallResult).self) { group in
            for (index, batch) in batches.enumerated() {
                group.addTask { (index, await platform.cancelOTATaskByDevice(batch, deadline: clockDeadline)) }
            }
            var ordered = [PlatformCallResult?](repeating: nil, count: batches.count)
            for await (index, result) in group { ordered[index] = result }
            return ordered.compactMap { $0 }
        }

        var cancelled = [String]()
        var failed = [CancelReply.FailedGroup]()
        var requestIds = [String]()
        var attempts = 0
        for result in results {
            attempts += result.attempts
            switch result.result {
            case .success(let response):
                cancelled += result.request.deviceNames
                if let id = response.requestId { requestIds.append(id) }
            case .failure(let error):
                failed.append(
                    .init(
                        deviceNames: result.request.deviceNames,
                        code: error.platformCode ?? error.shortDescription,
                        message: error.message,
                        requestId: error.requestId ?? result.requestIds.last,
                        httpStatus: error.httpStatus,
                        transient: error.isTransient,
                        attempts: result.attempts
                    )
                )
            }
        }
        reply.cancelledDevices = cancelled
        reply.requestIds = requestIds
        reply.calls = results.filter { $0.attempts > 0 }.count
        reply.attempts = attempts
        if failed.isEmpty {
            reply.status = .succeeded
        } else {
            reply.failedGroups = failed
            if attempts == 0, accepted.deadline.map({ $0 <= now() }) == true {
                // The deadline passed before a single call could be made (e.g. while waiting for the quota).
                reply.status = .expired
                reply.failedGroups = nil
                reply.calls = nil
                reply.attempts = nil
                reply.cancelledDevices = nil
                reply.requestIds = nil
            } else {
                reply.status = cancelled.isEmpty ? .failed : .partial
            }
        }
        reply.completedAt = now()
        return reply
    }
}

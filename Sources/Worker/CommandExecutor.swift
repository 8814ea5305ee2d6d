// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import PlatformAPI
import PlatformSignature

/// What running a command led to.
public enum ExecutionResult: Sendable {
    /// Finished: this is the reply.
    case reply(CancelReply)
    /// Some calls failed transiently and the deadline is still ahead: run the command again at this time
    /// (only the calls that have not succeeded or failed for good are made again). `outcomes` are the calls'
    /// outcomes so far, to store with the retry.
    case retry(at: Date, outcomes: [Int: BatchOutcome])
}

/// Executes a journaled command: plans the platform calls (at most 200 devices each), makes the ones not done
/// yet through the platform client (which paces, retries and re-signs), records each outcome, and builds the
/// reply, or asks for a retry while transient failures last and the deadline allows.
public struct CommandExecutor: Sendable {
    private let platform: PlatformAPIClient
    private let maxDeviceNamesPerCall: Int
    private let method: RPCHTTPMethod
    private let now: @Sendable () -> Date
    private let metrics: WorkerMetrics
    /// First delay between command-level retries; doubles each round up to ``maximumRetryDelay``. Default 1 s.
    public var initialRetryDelay: Duration = .seconds(1)
    /// Longest delay between command-level retries. Default 30 s.
    public var maximumRetryDelay: Duration = .seconds(30)

    public init(
        platform: PlatformAPIClient,
        platformConfiguration: PlatformAPIConfiguration,
        metrics: WorkerMetrics = WorkerMetrics(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.platform = platform
        self.metrics = metrics
        self.maxDeviceNamesPerCall = platformConfiguration.maxDeviceNamesPerCall
        self.method = platformConfiguration.method
        self.now = now
    }

    /// Runs the command. Never throws: every outcome is a reply or a retry.
    ///
    /// - Parameters:
    ///   - job: the command with the outcomes of its batches so far.
    ///   - record: stores one call's outcome as soon as it is known, when the command makes several calls (so a
    ///     restart does not repeat the answered ones while others still run). A single call's outcome travels
    ///     with the reply or the retry instead: one journal write fewer per command.
    public func execute(
        _ job: JournaledCommand,
        record: @escaping @Sendable (Int, BatchOutcome) async -> Void
    ) async -> ExecutionResult {
        let accepted = job.accepted
        let command = accepted.command
        let batches = CancelOTATaskByDeviceRequest.batches(
            productKey: command.productKey,
            firmwareId: command.firmwareId,
            deviceNames: command.deviceNames,
            jobId: command.jobId,
            iotInstanceId: command.iotInstanceId,
            maxPerCall: maxDeviceNamesPerCall
        )
        var reply = CancelReply(
            correlationId: accepted.correlationId,
            status: .succeeded,
            receivedAt: accepted.receivedAt,
            completedAt: accepted.receivedAt
        )
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
            return .reply(reply)
        }

        var outcomes = job.batches
        let deadlinePassed = accepted.deadline.map { $0 <= now() } ?? false
        let pending = batches.indices.filter { outcomes[$0]?.final != true }
        if !deadlinePassed && !pending.isEmpty {
            let clockDeadline = accepted.deadline.map { ContinuousClock.now + .seconds($0.timeIntervalSince(now())) }
            let previous = outcomes
            let recordEach = pending.count > 1
            let results = await withTaskGroup(of: (Int, BatchOutcome).self) { group in
                for index in pending {
                    group.addTask {
                        let started = ContinuousClock.now
                        let result = await platform.cancelOTATaskByDevice(batches[index], deadline: clockDeadline)
                        metrics.platformCall(result.result.map { _ in }, duration: ContinuousClock.now - started)
                        var outcome = self.outcome(of: result, deadline: accepted.deadline)
                        // Attempts add up over the rounds of a command retried after transient failures.
                        outcome.attempts += previous[index]?.attempts ?? 0
                        if recordEach { await record(index, outcome) }
                        return (index, outcome)
                    }
                }
                var results = [Int: BatchOutcome]()
                for await (index, outcome) in group { results[index] = outcome }
                return results
            }
            for (index, outcome) in results { outcomes[index] = outcome }
        }

        // Transient failures with the deadline still ahead: try again later rather than answer "failed".
        if accepted.deadline.map({ $0 > now() }) == true,
            batches.indices.contains(where: { outcomes[$0]?.final != true })
        {
            return .retry(at: retryDate(round: job.retryRound, deadline: accepted.deadline), outcomes: outcomes)
        }

        var cancelled = [String]()
        var failed = [CancelReply.FailedGroup]()
        var requestIds = [String]()
        var attempts = 0
        var calls = 0
        var permanentFailure = false
        for (index, batch) in batches.enumerated() {
            let outcome =
                outcomes[index]
                ?? BatchOutcome(
                    succeeded: false,
                    final: true,
                    code: "DeadlineExceeded",
                    message: "the deadline passed before this call could be made",
                    transient: true,
                    attempts: 0
                )
            attempts += outcome.attempts
            if outcome.attempts > 0 { calls += 1 }
            if outcome.succeeded {
                cancelled += batch.deviceNames
                if let id = outcome.requestId { requestIds.append(id) }
            } else {
                if !outcome.transient { permanentFailure = true }
                failed.append(
                    .init(
                        deviceNames: batch.deviceNames,
                        code: outcome.code ?? "Unknown",
                        message: outcome.message ?? "",
                        requestId: outcome.requestId,
                        httpStatus: outcome.httpStatus,
                        transient: outcome.transient || !outcome.final,
                        attempts: outcome.attempts
                    )
                )
            }
        }
        reply.cancelledDevices = cancelled
        reply.requestIds = requestIds
        reply.calls = calls
        reply.attempts = attempts
        if !failed.isEmpty { reply.failedGroups = failed }
        let expired = accepted.deadline.map { $0 <= now() } ?? false
        if failed.isEmpty {
            reply.status = .succeeded
        } else if !cancelled.isEmpty {
            reply.status = .partial
        } else if expired && !permanentFailure {
            // Nothing succeeded and only time (an outage, the quota) stood in the way.
            reply.status = .expired
        } else {
            reply.status = .failed
        }
        reply.completedAt = now()
        return .reply(reply)
    }

    /// A call's result as the journal keeps it. Transient failures are final only once the deadline has passed
    /// (or when there is no deadline to retry towards).
    private func outcome(of result: PlatformCallResult, deadline: Date?) -> BatchOutcome {
        switch result.result {
        case .success(let response):
            return BatchOutcome(succeeded: true, final: true, requestId: response.requestId, attempts: result.attempts)
        case .failure(let error):
            let retryLater =
                error.isTransient && error != .cancelled && error != .shutdown
                && deadline.map { $0 > now() } == true
            return BatchOutcome(
                succeeded: false,
                final: !retryLater && error != .cancelled && error != .shutdown,
                requestId: error.requestId ?? result.requestIds.last,
                code: error.platformCode ?? Self.workerCode(error.code),
                message: error.message,
                httpStatus: error.httpStatus,
                transient: error.isTransient,
                attempts: result.attempts
            )
        }
    }

    /// The contract's name for a failure the platform did not name itself.
    static func workerCode(_ code: PlatformAPIError.Code) -> String {
        switch code {
        case .transport: "Transport"
        case .timeout: "Timeout"
        case .httpStatus: "HTTPStatus"
        case .invalidResponse: "InvalidResponse"
        case .invalidRequest: "InvalidRequest"
        case .deadlineExceeded: "DeadlineExceeded"
        case .cancelled: "Cancelled"
        case .shutdown: "Shutdown"
        default: "Platform"
        }
    }

    /// Exponential backoff with equal jitter, capped, and never later than the deadline.
    private func retryDate(round: Int, deadline: Date?) -> Date {
        let base = min(maximumRetryDelay.seconds, initialRetryDelay.seconds * pow(2, Double(min(round, 20))))
        let delay = base / 2 + Double.random(in: 0...(base / 2))
        let date = now().addingTimeInterval(delay)
        return deadline.map { min($0, date) } ?? date
    }
}

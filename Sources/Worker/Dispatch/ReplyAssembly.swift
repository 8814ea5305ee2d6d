// SPDX-License-Identifier: Apache-2.0
import Foundation

/// How a finished command's reply is put together from its segments' outcomes and the calls that carried them.
///
/// The same rules as for a command run alone, so that coalescing changes nothing a requester can see except the
/// call figures: `succeeded` when every segment succeeded, `partial` when some did, `expired` when none did and
/// only time stood in the way (the deadline passed and no failure was permanent), else `failed`.
enum ReplyAssembly {
    static func reply(
        for accepted: AcceptedCommand,
        segments: [[String]],
        outcomes: [BatchOutcome?],
        calls: [CallTrace],
        now: Date
    ) -> CancelReply {
        var reply = CancelReply(answering: accepted, completedAt: now)
        reply.deviceCount = segments.reduce(0) { $0 + $1.count }

        var cancelled = [String]()
        var failed = [CancelReply.FailedGroup]()
        var permanentFailure = false
        for (index, names) in segments.enumerated() {
            let outcome = outcomes[index] ?? CallScheduler.expiredOutcome(nil)
            let excluded = outcome.excluded ?? [:]
            let sent = excluded.isEmpty ? names : names.filter { excluded[$0] == nil }
            if outcome.succeeded {
                cancelled += sent
            } else {
                if !outcome.transient { permanentFailure = true }
                failed.append(group(sent, outcome))
            }
            // A name that failed on its own (the platform named it) is a group of its own, in segment order.
            for name in names {
                guard let own = excluded[name] else { continue }
                if !own.transient { permanentFailure = true }
                failed.append(group([name], own))
            }
        }
        let made = calls.filter { $0.attempts > 0 }
        reply.cancelledDevices = cancelled
        reply.requestIds = made.compactMap(\.requestId)
        reply.calls = made.count
        reply.sharedCalls = made.count(where: \.shared)
        reply.attempts = made.reduce(0) { $0 + $1.attempts }
        if !failed.isEmpty { reply.failedGroups = failed }
        let expired = accepted.deadline.map { $0 <= now } ?? false
        if failed.isEmpty {
            reply.status = .succeeded
        } else if !cancelled.isEmpty {
            reply.status = .partial
        } else if expired && !permanentFailure {
            reply.status = .expired
        } else {
            reply.status = .failed
        }
        return reply
    }
}

extension ReplyAssembly {
    static func group(_ names: [String], _ outcome: BatchOutcome) -> CancelReply.FailedGroup {
        CancelReply.FailedGroup(
            deviceNames: names,
            code: outcome.code ?? "Unknown",
            message: outcome.message ?? "",
            requestId: outcome.requestId,
            httpStatus: outcome.httpStatus,
            transient: outcome.transient || !outcome.final,
            attempts: outcome.attempts
        )
    }
}

extension CancelReply {
    /// A reply to `accepted` that echoes its identifiers, audit fields and deadline; `succeeded` until told otherwise.
    init(answering accepted: AcceptedCommand, completedAt: Date) {
        self.init(
            correlationId: accepted.correlationId,
            status: .succeeded,
            receivedAt: accepted.receivedAt,
            completedAt: completedAt
        )
        echo(accepted.command)
        deadline = accepted.deadline
    }
}

// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformAPI
import PlatformSignature

extension Dispatcher {
    /// A dry run's reply: the calls the command would make alone, signed but not sent.
    func dryRun(_ command: JournaledCommand, now: Date) -> Settlement {
        let accepted = command.accepted
        let batches = CancelOTATaskByDeviceRequest.batches(
            productKey: accepted.command.productKey,
            firmwareId: accepted.command.firmwareId,
            deviceNames: accepted.command.deviceNames,
            jobId: accepted.command.jobId,
            iotInstanceId: accepted.command.iotInstanceId,
            maxPerCall: configuration.scheduler.maxNamesPerCall
        )
        var reply = CancelReply(answering: accepted, completedAt: now)
        reply.plannedCalls = batches.map { batch in
            let signed = platform.signedRequest(for: batch, timestamp: now, nonce: RPCNonce.make())
            return .init(method: method.rawValue, deviceNames: batch.deviceNames, stringToSign: signed.stringToSign)
        }
        reply.cancelledDevices = []
        reply.calls = 0
        reply.attempts = 0
        var settlement = Settlement()
        settlement.completed = [CompletedCommand(id: command.id, accepted: accepted, reply: reply)]
        return settlement
    }
}

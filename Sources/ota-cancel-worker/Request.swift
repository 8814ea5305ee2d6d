// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import Logging
import Mosquitto
import Worker
import WorkerApp

/// `ota-cancel-worker request`: send one cancel command, wait for its reply, exit with its outcome.
///
/// Thin: the command is built and checked by ``CancelRequest`` (the worker's own intake), sent by
/// ``CancelRequester``, and its outcome printed and mapped to the exit status by ``CancelRequestOutcome``.
struct Request: AsyncParsableCommand, WithBrokerOptions {
    static let configuration = CommandConfiguration(
        abstract: "Send one cancel command to the worker and wait for its reply; the exit status tells the outcome.",
        discussion: """
            Like mosquitto_rr, but typed: the command is built from the options, checked first with the worker's \
            own schema and messages (a command the worker would reject is never published), published with QoS 1 \
            (MQTT 5: Response Topic and Correlation Data; --mqtt-version 3.1.1: replyTo and correlationId in the \
            payload), and its reply awaited on a reply topic of its own. Prints a short summary, or the reply as \
            one JSON line with --json. The broker options and OTA_CANCEL_* variables are those of 'run'. \
            Exit status: 0 succeeded (a dry run too), 1 partial, 2 failed, 3 rejected (by the worker, or here \
            before publishing), 4 expired, 5 no reply within --timeout, 64 unusable options, 69 broker \
            unreachable or refusing, 78 unusable settings (e.g. the schema folder).
            """
    )

    @OptionGroup var broker: BrokerOptions

    @Option(help: "productKey of the devices. (required)")
    var productKey: String

    @Option(help: "firmwareId whose upgrade tasks are cancelled. (required)")
    var firmwareId: String

    @Argument(help: "Device names (also, or instead: --devices-file).")
    var deviceNames: [String] = []

    @Option(help: "File of device names, one per line (blank lines skipped); - reads standard input.")
    var devicesFile: String?

    @Option(help: "jobId: cancel only this upgrade batch (the worker then reads the devices back). (default: none)")
    var jobId: String?

    @Option(help: "iotInstanceId, instead of the worker's. (default: the worker's)")
    var iotInstanceId: String?

    @Option(
        help:
            "Deadline: an RFC 3339 date-time, or a duration from now (90s, 5m, 2h, 1d); past it the worker answers expired. (default: the worker's)"
    )
    var deadline: String?

    @Flag(help: "Plan and sign the calls, call nothing.")
    var dryRun = false

    @Flag(
        name: .customLong("verify"),
        inversion: .prefixedNo,
        help: "Ask for (or against) reading the devices back after the cancel. (default: the worker's --verify)"
    )
    var readBack: Bool?

    @Option(help: "Why, for the audit trail: echoed in the worker's logs and the reply. (default: none)")
    var reason: String?

    @Option(help: "Who or what asks, for the audit trail. (default: none)")
    var requestedBy: String?

    @Option(
        help:
            "Correlation id; sending a command again with the same id and fields returns its first reply, nothing is cancelled twice. (default: a new UUID)"
    )
    var correlationId: String?

    @Option(
        help:
            "Topic the reply is asked for on; it must match the worker's --reply-topic-allow. The worker knows a command by this topic and its correlation id, so the default is the same for every request from this host: a command sent again with the same --correlation-id is then a repetition. (default: ota/cancel/reply/ota-cancel-request-<hostname>)"
    )
    var replyTopic: String?

    @Option(
        help:
            "The worker's command topic (or OTA_CANCEL_COMMAND_TOPIC; a $share/<group>/ prefix is dropped). (default: ota/cancel/request)"
    )
    var commandTopic: String?

    @Option(help: "Folder holding cancel-command.schema.json for the local check. (default: the built-in copy)")
    var schemaDir: String?

    @Option(help: "The worker's device limit, for the local check. (default: 10000)")
    var maxDeviceNames: Int?

    @Option(help: "Seconds to wait for the reply once the broker has the command. (default: 300)")
    var timeout: Double = 300

    @Option(
        name: .customLong("connect-timeout"),
        help: "Seconds to wait for the broker to accept the connection. (default: 10)"
    )
    var brokerConnectTimeout: Double = 10

    @Flag(help: "Print the reply as one JSON line instead of a summary.")
    var json = false

    func validate() throws {
        guard timeout > 0, timeout.isFinite, brokerConnectTimeout > 0, brokerConnectTimeout.isFinite else {
            throw ValidationError("--timeout and --connect-timeout must be positive numbers of seconds")
        }
        if let deadline, RequestDeadline.parse(deadline) == nil {
            throw ValidationError(
                "--deadline must be an RFC 3339 date-time (2026-12-01T18:00:00Z) or a positive duration (90s, 5m, 2h, 1d), not '\(deadline)'"
            )
        }
    }

    func run() async throws {
        var names = deviceNames
        if let devicesFile {
            let data: Data?
            if devicesFile == "-" {
                data = try? FileHandle.standardInput.readToEnd()
            } else {
                data = FileManager.default.contents(atPath: devicesFile)
            }
            guard let data, let text = String(data: data, encoding: .utf8) else {
                throw failure("--devices-file: cannot read '\(devicesFile)' as UTF-8 text", status: 66)
            }
            names += DeviceNameList.parse(text)
        }
        if names.isEmpty {
            throw ValidationError(
                "name at least one device: as arguments, or with --devices-file FILE (- for standard input)"
            )
        }
        let random = UUID().uuidString.lowercased()
        let settings: WorkerConfiguration.BrokerSettings
        let schema: CommandSchema
        do {
            settings = try WorkerConfiguration.resolveBroker(
                self,
                defaultClientID: "ota-cancel-request-" + random.prefix(8)
            )
            schema = try WorkerApp.commandSchema(
                path: settings.commandSchemaPath,
                maxDeviceNames: settings.maxDeviceNames
            )
        } catch {
            throw failure(error.message, status: WorkerApp.exitStatus(forStartFailure: error))
        }
        var request = CancelRequest(
            productKey: productKey,
            firmwareId: firmwareId,
            deviceNames: names,
            correlationId: correlationId ?? random,
            replyTopic: replyTopic ?? "ota/cancel/reply/ota-cancel-request-" + WorkerConfiguration.shortHostName,
            protocolVersion: settings.mqtt.protocolVersion
        )
        request.jobId = jobId
        request.iotInstanceId = iotInstanceId
        request.deadline = deadline.flatMap { RequestDeadline.parse($0) }
        request.dryRun = dryRun
        request.verify = readBack
        request.reason = reason
        request.requestedBy = requestedBy

        let outcome: CancelRequestOutcome
        switch request.check(topic: settings.commandTopic, schema: schema) {
        case .rejected(let reply):
            outcome = .rejectedLocally(reply.jsonValue)
        case .send:
            var logger = Logger(label: "ota-cancel-worker.request")
            logger.logLevel = .critical
            do {
                outcome = try await CancelRequester.send(
                    request,
                    topic: settings.commandTopic,
                    mqtt: settings.mqtt,
                    connectTimeout: .milliseconds(Int64(brokerConnectTimeout * 1000)),
                    replyTimeout: .milliseconds(Int64(timeout * 1000)),
                    logger: logger
                )
            } catch {
                throw failure(error.message, status: error.exitStatus)
            }
        }
        if json, let line = outcome.jsonLine {
            print(line)
        } else {
            for line in outcome.summary { print(line) }
        }
        if case .noReply = outcome, json {
            FileHandle.standardError.write(Data((outcome.summary.joined(separator: "\n") + "\n").utf8))
        }
        if outcome.exitStatus != 0 { throw ExitCode(outcome.exitStatus) }
    }
}

// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Logging
import Foundation
import ServiceLifecycle
import UnixSignals
import Worker
import WorkerApp

/// `ota-cancel-worker run`: the long-running worker.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the worker until SIGTERM or SIGINT.")

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        let configuration: WorkerConfiguration
        do {
            configuration = try WorkerConfiguration.resolve(options)
        } catch {
            let format = WorkerConfiguration.requestedLogFormat(options)
            throw failure(error.message, status: WorkerApp.ExitStatus.configuration, format: format)
        }
        let (level, format) = (configuration.logLevel, configuration.logFormat)
        // One line per record, escaped: a command's correlationId or reason can never start a line of its own.
        LoggingSystem.bootstrap { label in WorkerLogHandler(label: label, level: level, format: format) }
        let logger = Logger(label: "ota-cancel-worker")
        let built: WorkerApp.Built
        do {
            built = try WorkerApp.buildServiceGroup(configuration, logger: logger)
        } catch {
            // Said once, on standard error, with the status a supervisor acts on (75: try again later; 78: fix
            // the configuration).
            throw failure(error.message, status: WorkerApp.exitStatus(forStartFailure: error), format: format)
        }
        // The first SIGTERM/SIGINT starts a graceful shutdown (the service group traps it); a second one ends the
        // process at once: everything acknowledged is in the journal, so nothing is lost.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let impatience = Task {
            var seen = 0
            for await signal in signals {
                seen += 1
                if seen >= 2 {
                    logger.warning("second \(signal): stopping now; the journal has everything to resume")
                    fflush(nil)
                    _exit(130)
                }
            }
        }
        defer { impatience.cancel() }
        do {
            try await built.serviceGroup.run()
        } catch {
            // 69: the broker given up on (--exit-on-connection-failure); 78: the operations port taken meanwhile.
            let message = (error as? WorkerError)?.message ?? "\(error)"
            throw failure(message, status: WorkerApp.exitStatus(forRunFailure: error), format: format)
        }
    }
}

/// `ota-cancel-worker check-config`: resolve and check every setting, print them (secrets redacted), exit.
struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check the configuration as run would at start (settings, secret files, topics, schema, state "
            + "folder, operations port; no network), print the resolved settings, and exit: 0, or 78 naming the setting."
    )

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        do {
            let configuration = try WorkerConfiguration.resolve(options)
            let checks = try WorkerApp.checkStart(configuration)
            print(configuration.summary)
            for line in checks { print(line) }
        } catch {
            throw failure(error.message, status: WorkerApp.exitStatus(forStartFailure: error))
        }
    }
}

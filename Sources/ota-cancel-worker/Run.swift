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
            throw ValidationError(error.message)
        }
        let (level, format) = (configuration.logLevel, configuration.logFormat)
        // One line per record, escaped: a command's correlationId or reason can never start a line of its own.
        LoggingSystem.bootstrap { label in WorkerLogHandler(label: label, level: level, format: format) }
        let logger = Logger(label: "ota-cancel-worker")
        let built: WorkerApp.Built
        do {
            built = try WorkerApp.buildServiceGroup(configuration, logger: logger)
        } catch {
            // Said once, on standard error, with the status a supervisor acts on (75: try again later).
            FileHandle.standardError.write(Data("Error: \(error.description)\n".utf8))
            throw ExitCode(WorkerApp.exitStatus(forStartFailure: error))
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
        try await built.serviceGroup.run()
    }
}

/// `ota-cancel-worker check-config`: resolve and check every setting, print them (secrets redacted), exit.
struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check the configuration and the command schema, print the resolved settings, and exit."
    )

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        do {
            let configuration = try WorkerConfiguration.resolve(options)
            _ = try WorkerApp.loadCommandSchema(configuration)
            print(configuration.summary)
        } catch {
            throw ValidationError(error.message)
        }
    }
}

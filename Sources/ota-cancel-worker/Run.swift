// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Logging
import ServiceLifecycle
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
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "ota-cancel-worker")
        let built = try WorkerApp.buildServiceGroup(configuration, logger: logger)
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

// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Logging
import WorkerApp

@main
struct OTACancelWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ota-cancel-worker",
        abstract:
            "Turns MQTT \"cancel firmware upgrade\" commands into signed CancelOTATaskByDevice calls and replies.",
        discussion: """
            Every option can also be set by an environment variable OTA_CANCEL_<OPTION> (upper case, dashes as \
            underscores), e.g. OTA_CANCEL_BROKER_HOST. The AccessKey secret comes from --access-key-secret-file, \
            OTA_CANCEL_ACCESS_KEY_SECRET_FILE or OTA_CANCEL_ACCESS_KEY_SECRET, never from the command line.
            """,
        version: BuildInfo.versionLine,
        subcommands: [Run.self, CheckConfig.self, Request.self, Sign.self, Validate.self, Health.self, Journal.self],
        defaultSubcommand: Run.self
    )
}

// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Worker
import WorkerApp

/// `ota-cancel-worker sign`: print the exact signed request(s) the worker would send for a command.
///
/// Thin: the flags become ``SignArguments`` and `SignCommand.run` does the work (tested as a library).
struct Sign: ParsableCommand, SignArguments {
    static let configuration = CommandConfiguration(
        abstract: "Print the string-to-sign, the signature and the signed URL of a command's platform calls.",
        discussion: """
            For when the platform answers SignatureDoesNotMatch: sign the command exactly as the worker would \
            (same settings and OTA_CANCEL_* variables as 'run'), and with --compare paste the server's \
            string-to-sign (or its whole error message) to learn whether the secret or the canonicalisation \
            differs. With --compare, the Timestamp and SignatureNonce are taken from the server's string unless \
            given. Exit status 0 whatever the verdict; invalid settings or commands exit 78 (one Error: line), a bad flag 64.
            """
    )

    @Option(
        name: .customLong("command"),
        help: "The command JSON file (as published on MQTT), or - for standard input."
    )
    var commandFile: String

    @Option(help: "HTTP method: GET or POST. (default: OTA_CANCEL_PLATFORM_METHOD, else GET)")
    var method: String?

    @Option(help: "Request profile: aliyun or tuya. (default: OTA_CANCEL_PLATFORM_PROFILE, else aliyun)")
    var platformProfile: String?

    @Option(help: "Timestamp, yyyy-MM-ddTHH:mm:ssZ. (default: now, or the compared string's)")
    var timestamp: String?

    @Option(help: "SignatureNonce. (default: random, or the compared string's)")
    var nonce: String?

    @Flag(help: "Print one JSON object per call: method, stringToSign, signature, url, ...")
    var json = false

    @Option(help: "The server's string-to-sign from SignatureDoesNotMatch (or its whole message) to compare with.")
    var compare: String?

    @Option(
        help:
            "Platform endpoint for the printed URL (not signed). (default: derived from --region-id, else a placeholder)"
    )
    var platformEndpoint: String?

    @Option(help: "AccessKey ID. (required; or OTA_CANCEL_ACCESS_KEY_ID)")
    var accessKeyId: String?

    @Option(help: "File holding the AccessKey secret (or OTA_CANCEL_ACCESS_KEY_SECRET).")
    var accessKeySecretFile: String?

    @Option(help: "RegionId (aliyun profile). (default: not sent)")
    var regionId: String?

    @Option(help: "IotInstanceId sent unless the command names one. (default: not sent)")
    var iotInstanceId: String?

    @Option(
        help:
            "Folder holding cancel-command.schema.json, to use instead of the copy built into the binary. (default: the built-in copy)"
    )
    var schemaDir: String?

    func run() throws {
        let output: SignCommand.Output
        do {
            output = try SignCommand.run(self)
        } catch {
            // A setting or a command the worker would refuse: configuration (78), said once, no usage text.
            throw failure(error.message, status: 78)
        }
        print(json ? output.jsonLines : output.text)
    }
}

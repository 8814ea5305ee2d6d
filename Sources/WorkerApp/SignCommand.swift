// SPDX-License-Identifier: Apache-2.0
public import Foundation
public import PlatformAPI
public import PlatformSignature
public import Worker
import JSONSchema

/// The `sign` command's settings as given on the command line: `nil` means "not given".
///
/// Like ``WorkerArguments``, every setting not given falls back to `OTA_CANCEL_<NAME>`, so `sign` run in the
/// worker's environment signs exactly what the worker sends: same AccessKeyId, secret, profile, method, region
/// and instance. The command-line tool conforms to this protocol; tests pass their own values.
public protocol SignArguments: Sendable {
    /// The command file (a cancel command as published on MQTT), or `-` for standard input. Required.
    var commandFile: String { get }
    /// `GET` or `POST` (`OTA_CANCEL_PLATFORM_METHOD`; default `GET`, as `run`).
    var method: String? { get }
    /// `aliyun` or `tuya` (`OTA_CANCEL_PLATFORM_PROFILE`; default `aliyun`, as `run`).
    var platformProfile: String? { get }
    /// The `Timestamp`, `yyyy-MM-ddTHH:mm:ssZ` (default: now, or the compared string's).
    var timestamp: String? { get }
    /// The `SignatureNonce` (default: a random one, or the compared string's).
    var nonce: String? { get }
    /// The server's string-to-sign (or its whole `SignatureDoesNotMatch` message or error body) to compare with.
    var compare: String? { get }
    var platformEndpoint: String? { get }
    var accessKeyId: String? { get }
    var accessKeySecretFile: String? { get }
    var regionId: String? { get }
    var iotInstanceId: String? { get }
    var schemaDir: String? { get }
}

extension SignArguments {
    public var method: String? { nil }
    public var platformProfile: String? { nil }
    public var timestamp: String? { nil }
    public var nonce: String? { nil }
    public var compare: String? { nil }
    public var platformEndpoint: String? { nil }
    public var accessKeyId: String? { nil }
    public var accessKeySecretFile: String? { nil }
    public var regionId: String? { nil }
    public var iotInstanceId: String? { nil }
    public var schemaDir: String? { nil }
}

/// `ota-cancel-worker sign`: the exact requests the worker would send for a command, for the person who has to
/// find out why the platform answers `SignatureDoesNotMatch`.
///
/// The library half of the command (the executable only parses flags and prints): it resolves the settings as
/// `run` does, validates the command against the same schema, splits it into the same calls of at most 200
/// devices, and signs each with the same pure function the client uses
/// (``PlatformAPIConfiguration/signedRequest(for:timestamp:nonce:)``), with the time and nonce given or fresh.
public enum SignCommand {
    /// The placeholder host of the printed URL when no endpoint is configured and none can be derived: a
    /// reserved name (RFC 2606) that can never reach anything. The host is not signed, so the string-to-sign and
    /// the signature do not depend on it.
    public static let placeholderEndpoint = "https://platform.invalid"

    /// One signed call of the command.
    public struct SignedCall: Sendable {
        /// 1-based position among the command's calls.
        public var index: Int
        /// How many calls the command makes.
        public var count: Int
        /// The call's device names.
        public var deviceNames: [String]
        /// The signed request.
        public var request: SignedRPCRequest
        /// The complete URL (parameters and `Signature` in the query, as the worker sends them).
        public var url: String
        /// The comparison with the server's string-to-sign, when one was given.
        public var comparison: StringToSignComparison?
    }

    /// What `sign` computed, ready to print.
    public struct Output: Sendable {
        /// The calls, in order; with `--compare`, only the call the server's string-to-sign belongs to.
        public var calls: [SignedCall]
        /// The endpoint the URLs use (the configured one, or a derived or placeholder one).
        public var endpoint: String
        /// Why the endpoint is not the configured one, when it is not.
        public var endpointNote: String?
        /// The profile the parameters follow.
        public var profile: PlatformProfile

        /// Human-readable text: per call the string-to-sign, the signature and the URL, then the comparison.
        public var text: String {
            var lines = [String]()
            if let endpointNote { lines.append("note: " + endpointNote) }
            for call in calls {
                lines.append(
                    "call \(call.index) of \(call.count): \(call.deviceNames.count) device(s), \(call.request.method), "
                        + "profile \(profile)"
                )
                lines.append("string-to-sign:")
                lines.append("  " + call.request.stringToSign)
                lines.append("signature:")
                lines.append("  " + call.request.signature)
                lines.append("url:")
                lines.append("  " + call.url)
                if let comparison = call.comparison {
                    lines.append("comparison with the server's string-to-sign:")
                    if comparison.secretDiffers {
                        lines.append("  " + comparison.verdict)
                    } else {
                        lines.append(
                            "  The strings to sign differ: the canonicalisation differs (the secret may well be right)."
                        )
                        for difference in comparison.differences { lines.append("  - " + difference) }
                        lines.append("  server's: " + comparison.server)
                    }
                }
            }
            return lines.joined(separator: "\n")
        }

        /// One JSON object per call, one per line: `method`, `stringToSign`, `signature`, `url`, plus `call`,
        /// `calls`, `deviceNames` and, with `--compare`, `comparison` (`secretDiffers`, `verdict`,
        /// `differences`, `serverStringToSign`). A command of up to 200 devices is exactly one object.
        public var jsonLines: String {
            calls.map { call in
                var pairs: [(String, JSONValue)] = [
                    ("method", .string(call.request.method.rawValue)),
                    ("stringToSign", .string(call.request.stringToSign)),
                    ("signature", .string(call.request.signature)),
                    ("url", .string(call.url)),
                    ("call", .number(JSONNumber(call.index))),
                    ("calls", .number(JSONNumber(call.count))),
                    ("deviceNames", .array(call.deviceNames.map { .string($0) })),
                ]
                if let comparison = call.comparison {
                    let details: [(String, JSONValue)] = [
                        ("secretDiffers", .bool(comparison.secretDiffers)),
                        ("verdict", .string(comparison.verdict)),
                        ("differences", .array(comparison.differences.map { .string($0) })),
                        ("serverStringToSign", .string(comparison.server)),
                    ]
                    pairs.append(("comparison", .object(JSONObject(details))))
                }
                return JSONValue.object(JSONObject(pairs)).serialized()
            }
            .joined(separator: "\n")
        }
    }

    /// Resolves the settings, reads and validates the command, and signs its calls.
    ///
    /// - Parameters:
    ///   - arguments: the command line.
    ///   - environment: the variables to read; `nil` reads the process environment.
    ///   - standardInput: read when the command file is `-`.
    /// - Throws: ``WorkerError`` naming the setting or the problem with the command.
    public static func run(
        _ arguments: some SignArguments,
        environment: [String: String]? = nil,
        standardInput: () -> Data = { FileHandle.standardInput.readDataToEndOfFile() }
    ) throws(WorkerError) -> Output {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let settings = SettingResolver(environment: environment)

        // Credentials and request shape, as `run` resolves them.
        guard let accessKeyId = try settings.optionalString("access-key-id", arguments.accessKeyId) else {
            throw .invalidConfiguration("access-key-id is required (--access-key-id or OTA_CANCEL_ACCESS_KEY_ID)")
        }
        let secret: AccessKeySecret
        if let secretFile = try settings.optionalString("access-key-secret-file", arguments.accessKeySecretFile) {
            secret = AccessKeySecret(
                try WorkerConfiguration.readSecretFile(secretFile, setting: "access-key-secret-file")
            )
        } else if let value = environment[WorkerConfiguration.secretEnvironmentVariable] {
            secret = AccessKeySecret(value)
        } else {
            throw .invalidConfiguration(
                "the AccessKey secret is required: --access-key-secret-file FILE, OTA_CANCEL_ACCESS_KEY_SECRET_FILE "
                    + "or OTA_CANCEL_ACCESS_KEY_SECRET"
            )
        }
        guard !secret.isEmpty else { throw .invalidConfiguration("the AccessKey secret is empty") }
        let profileName = try settings.string("platform-profile", arguments.platformProfile, default: "aliyun")
        guard let profile = PlatformProfile(name: profileName) else {
            throw .invalidConfiguration("platform-profile must be aliyun or tuya, not '\(profileName)'")
        }
        let methodName = try settings.string("platform-method", arguments.method, default: "GET").uppercased()
        guard let method = RPCHTTPMethod(rawValue: methodName) else {
            throw .invalidConfiguration("method must be GET or POST, not '\(methodName)'")
        }
        let regionId = try settings.optionalString("region-id", arguments.regionId)
        if regionId != nil, !profile.sendsRegionId {
            throw .invalidConfiguration("region-id is not sent with platform-profile \(profile): Tuya has no RegionId")
        }

        // The endpoint only shapes the printed URL; the host is not signed.
        var endpointNote: String?
        let endpoint: String
        if let configured = try settings.optionalString("platform-endpoint", arguments.platformEndpoint) {
            if let problem = PlatformAPIClient.problem(withEndpoint: configured) {
                throw .invalidConfiguration("platform-endpoint: \(problem)")
            }
            endpoint = configured
        } else if let regionId, profile == .aliyun {
            endpoint = "https://iot.\(regionId).aliyuncs.com"
            endpointNote = "no --platform-endpoint: the URL uses Alibaba's documented endpoint for \(regionId)"
        } else {
            endpoint = placeholderEndpoint
            endpointNote = "no --platform-endpoint: the URL uses the placeholder host platform.invalid (not signed)"
        }

        var configuration = PlatformAPIConfiguration(
            endpoint: endpoint,
            accessKeyId: accessKeyId,
            accessKeySecret: secret
        )
        configuration.profile = profile
        configuration.method = method
        configuration.regionId = regionId
        configuration.iotInstanceId = try settings.optionalString("iot-instance-id", arguments.iotInstanceId)

        let command = try readCommand(arguments, settings: settings, standardInput: standardInput)

        // Time and nonce: given, else the compared string's (so the comparison is like for like), else fresh.
        let server = arguments.compare.map { StringToSignComparison.extractServerStringToSign(from: $0) }
        let serverParameters = server.flatMap { StringToSignComparison.parse(stringToSign: $0) }
            .map { Dictionary($0.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first }) }
        if server != nil, serverParameters == nil {
            throw .invalidConfiguration(
                "compare: not a string-to-sign (METHOD&%2F&...); give the part after \"string to sign is:\""
            )
        }
        let timestampText = arguments.timestamp ?? serverParameters?["Timestamp"]
        var timestamp = Date()
        if let timestampText {
            guard let parsed = RPCTimestamp.date(from: timestampText) else {
                throw .invalidConfiguration("timestamp must be yyyy-MM-ddTHH:mm:ssZ (UTC), not '\(timestampText)'")
            }
            timestamp = parsed
        }
        let nonce = arguments.nonce ?? serverParameters?["SignatureNonce"] ?? RPCNonce.make()
        guard !nonce.isEmpty else { throw .invalidConfiguration("nonce must not be empty") }

        let batches = CancelOTATaskByDeviceRequest.batches(
            productKey: command.productKey,
            firmwareId: command.firmwareId,
            deviceNames: command.deviceNames,
            jobId: command.jobId,
            iotInstanceId: command.iotInstanceId,
            maxPerCall: configuration.maxDeviceNamesPerCall
        )
        var calls = batches.enumerated().map { offset, batch in
            let signed = configuration.signedRequest(for: batch, timestamp: timestamp, nonce: nonce)
            return SignedCall(
                index: offset + 1,
                count: batches.count,
                deviceNames: batch.deviceNames,
                request: signed,
                url: signed.url(endpoint: endpoint),
                comparison: nil
            )
        }
        if let server {
            // The call the server's string belongs to: the one whose first device it names, else the first.
            let first = serverParameters?["DeviceName.1"]
            let index = calls.firstIndex { $0.deviceNames.first == first } ?? 0
            var call = calls[index]
            call.comparison = StringToSignComparison(ours: call.request.stringToSign, server: server)
            calls = [call]
        }
        return Output(calls: calls, endpoint: endpoint, endpointNote: endpointNote, profile: profile)
    }

    /// Reads the command file (or standard input), parses it and validates it against the command schema.
    private static func readCommand(
        _ arguments: some SignArguments,
        settings: SettingResolver,
        standardInput: () -> Data
    ) throws(WorkerError) -> CancelCommand {
        let data: Data
        if arguments.commandFile == "-" {
            data = standardInput()
        } else {
            guard let contents = FileManager.default.contents(atPath: arguments.commandFile) else {
                throw .invalidConfiguration("command: cannot read '\(arguments.commandFile)'")
            }
            data = contents
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(data)
        } catch {
            // Position and kind only: a secret file given as --command by mistake must not be printed.
            throw .invalidConfiguration(
                "command: '\(arguments.commandFile)' is not JSON: \(FileDiagnostics.notJSON(error))"
            )
        }
        let schemaPath = try WorkerConfiguration.commandSchemaPath(
            schemaDir: try settings.optionalString("schema-dir", arguments.schemaDir)
        )
        let schema = try WorkerApp.commandSchema(path: schemaPath, maxDeviceNames: nil)
        let errors = FileDiagnostics.printable(schema.validator.validate(value), instance: value)
        guard errors.isEmpty else {
            let problems = errors.map { "\($0.instanceLocation.isEmpty ? "/" : $0.instanceLocation): \($0.message)" }
            throw .invalidConfiguration(
                "command: the worker would reject it: " + problems.joined(separator: "; ")
            )
        }
        guard let command = CancelCommand(validated: value) else {
            throw .invalidConfiguration("command: it passed the schema but could not be read")
        }
        return command
    }
}

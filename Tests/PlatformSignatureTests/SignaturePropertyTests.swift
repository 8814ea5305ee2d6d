// SPDX-License-Identifier: Apache-2.0
import Foundation
import PlatformSignature
import Testing

/// Our signer against an independent implementation of reference §1.1 (`Tests/Python/rpc_signature_reference.py`: Python's
/// `urllib.parse.quote`, `hmac`, `hashlib`), on thousands of random parameter sets, GET and POST.
///
/// The vectors pin the signer to a handful of documented requests; this pins it to the algorithm on inputs
/// nobody wrote down: any UTF-8 (CJK, emoji, combining marks, controls), the characters that need care
/// (`@ : . - _ ~ *`, space, `+ / = & %`), empty values, random parameter names, and up to 200 `DeviceName.N`
/// that must sort by byte. The seed is random unless `OTA_PROPERTY_SEED` is set, and every failure names it.
@Suite("RPC signature v1.0 property", .timeLimit(.minutes(3)))
struct SignaturePropertyTests {
    static let caseCount = 3_000

    /// What comparing every case found; computed off the test's task, reported on it.
    struct Findings: Sendable {
        var mismatches = 0
        var firstMismatches = [String]()
        var roundTripFailures = [Int]()
    }

    @Test("our signer equals an independent Python implementation on 3,000 random parameter sets")
    func matchesIndependentImplementation() async throws {
        let seed =
            ProcessInfo.processInfo.environment["OTA_PROPERTY_SEED"].flatMap(UInt64.init)
            ?? UInt64.random(in: 1...UInt64.max)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sig-property-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("cases.jsonl")

        // The CPU-heavy parts run on a thread of their own: on the two cooperative threads of a 2-core machine
        // they would stall every other test running in parallel (and their timeouts with them).
        let cases = try await onDedicatedThread {
            var random = SplitMix64(seed: seed)
            let cases = (0..<Self.caseCount).map { _ in RandomCase.make(using: &random) }
            let lines = try cases.map {
                String(decoding: try JSONSerialization.data(withJSONObject: $0.json), as: UTF8.self)
            }
            try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
            return cases
        }

        let output = try await runReference(input: input.path)
        let answers = output.split(separator: "\n").map(String.init)
        try #require(
            answers.count == cases.count,
            "the reference printed \(answers.count) lines for \(cases.count) cases (seed \(seed))"
        )

        let findings = try await onDedicatedThread {
            var findings = Findings()
            for (index, (testCase, line)) in zip(cases, answers).enumerated() {
                let expected = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String] ?? [:]
                let signer = RPCSigner(accessKeyId: "unused", accessKeySecret: AccessKeySecret(testCase.secret))
                let signed = signer.sign(method: testCase.method, parameters: testCase.dictionary)
                if signed.stringToSign != expected["stringToSign"] || signed.signature != expected["signature"] {
                    findings.mismatches += 1
                    if findings.firstMismatches.count < 3 {
                        findings.firstMismatches.append(
                            """
                            case \(index) (seed \(seed)) differs:
                            parameters: \(testCase.parameters)
                            ours:      \(signed.stringToSign) \(signed.signature)
                            reference: \(expected["stringToSign"] ?? "") \(expected["signature"] ?? "")
                            """
                        )
                    }
                }
                // The wire form decodes back to exactly what was signed.
                if RPCCanonicalization.parseQuery(signed.encodedQuery) != signed.parameters {
                    findings.roundTripFailures.append(index)
                }
            }
            return findings
        }
        for description in findings.firstMismatches { Issue.record(Comment(rawValue: description)) }
        #expect(findings.mismatches == 0, "\(findings.mismatches) of \(cases.count) cases differ (seed \(seed))")
        #expect(
            findings.roundTripFailures.isEmpty,
            "the encoded query does not decode back: cases \(findings.roundTripFailures.prefix(5)) (seed \(seed))"
        )
        // The generator really produced what the property is about (a broken generator must not pass quietly).
        let methods = Set(cases.map(\.method))
        let allValues = cases.flatMap { $0.parameters.map(\.1) }.joined()
        #expect(methods == [.get, .post])
        #expect(cases.contains { $0.parameters.count > 200 })
        for needle in ["@", ":", ".", "-", "_", "~", "*", " ", "+", "%"] {
            #expect(allValues.contains(needle), "no value contained \(needle)")
        }
        #expect(allValues.unicodeScalars.contains { (0x4E00...0x9FA5).contains($0.value) }, "no CJK")
        #expect(allValues.unicodeScalars.contains { $0.value >= 0x1F300 }, "no emoji")
    }

    /// Runs `work` on a new thread (not the cooperative pool) and returns its result.
    private func onDedicatedThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs the reference script over the case file and returns its standard output.
    ///
    /// A missing `python3` fails the test with the command that installs it: never a silent skip.
    private func runReference(input: String) async throws -> String {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Python/rpc_signature_reference.py").path
        let outputPath = input + ".out"
        let errorPath = input + ".err"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, input]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: outputPath)
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        guard process.terminationStatus == 0 else {
            let errors = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
            Issue.record(
                "python3 \(script) exited \(process.terminationStatus) (python3 is required: apt-get install -y python3): \(errors)"
            )
            throw CancellationError()
        }
        return try String(contentsOfFile: outputPath, encoding: .utf8)
    }
}

/// One random parameter set.
struct RandomCase: Sendable {
    var method: RPCHTTPMethod
    var secret: String
    var parameters: [(String, String)]

    var dictionary: [String: String] { Dictionary(parameters, uniquingKeysWith: { first, _ in first }) }

    var json: [String: Any] {
        ["method": method.rawValue, "secret": secret, "parameters": parameters.map { [$0.0, $0.1] }]
    }

    static let commonNames = [
        "Action", "AccessKeyId", "SignatureMethod", "SignatureNonce", "Timestamp", "Format", "Version",
        "SignatureVersion", "RegionId", "SignatureType", "ProductKey", "FirmwareId", "JobId", "IotInstanceId",
    ]

    static func make(using random: inout SplitMix64) -> RandomCase {
        var parameters = [(String, String)]()
        var names = Set<String>()
        func add(_ name: String, _ value: String) {
            if names.insert(name).inserted { parameters.append((name, value)) }
        }
        for name in commonNames where random.next() % 3 != 0 { add(name, randomValue(using: &random)) }
        // Mostly a few device names, sometimes the full 200 (which must sort as 1, 10, 100, 101, ..., 2, 20, ...).
        let deviceCount = random.next() % 10 == 0 ? Int(150 + random.next() % 51) : Int(random.next() % 13)
        for index in 0..<deviceCount { add("DeviceName.\(index + 1)", randomValue(using: &random)) }
        // Random ASCII names (upper before lower case in byte order), including ones that need encoding.
        for _ in 0..<Int(random.next() % 4) {
            let alphabet = Array("ABCXYZabcxyz019._-~*@: ")
            let length = 1 + Int(random.next() % 8)
            add(
                String((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }),
                randomValue(using: &random)
            )
        }
        if parameters.isEmpty { add("Action", "Empty") }
        // Shuffle, so no order of insertion can hide a sorting bug.
        for index in parameters.indices.reversed() where index > 0 {
            parameters.swapAt(index, Int(random.next() % UInt64(index + 1)))
        }
        return RandomCase(
            method: random.next() % 2 == 0 ? .get : .post,
            secret: randomSecret(using: &random),
            parameters: parameters
        )
    }

    /// The scalars a value is drawn from: the characters the reference calls out, ASCII, Latin-1, combining
    /// marks, CJK, emoji, controls.
    static func randomScalar(using random: inout SplitMix64) -> Unicode.Scalar {
        let special = Array("@:.-_~* +/=&%!'()\"#?[]{}|\\^`<>,;$".unicodeScalars)
        let ranges: [ClosedRange<UInt32>] = [
            0x20...0x7E,  // printable ASCII
            0xA0...0xFF,  // Latin-1
            0x0300...0x036F,  // combining marks
            0x4E00...0x9FA5,  // CJK
            0x1F300...0x1F64F,  // emoji
            0x0001...0x001F,  // controls
        ]
        switch random.next() % 10 {
        case 0...3:
            return special[Int(random.next() % UInt64(special.count))]
        case 4...6:
            return Unicode.Scalar(UInt32(0x20 + random.next() % 95))!
        default:
            let range = ranges[Int(random.next() % UInt64(ranges.count))]
            let value = range.lowerBound + UInt32(random.next() % UInt64(range.count))
            return Unicode.Scalar(value) ?? "?"
        }
    }

    /// A secret: printable ASCII without spaces, sometimes CJK (``AccessKeySecret`` trims surrounding
    /// whitespace, as a secret read from a file must be, so none is generated).
    static func randomSecret(using random: inout SplitMix64) -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<(1 + Int(random.next() % 30)) {
            let value =
                random.next() % 8 == 0 ? UInt32(0x4E00 + random.next() % 0x51A5) : UInt32(0x21 + random.next() % 94)
            scalars.append(Unicode.Scalar(value)!)
        }
        return String(scalars)
    }

    static func randomValue(using random: inout SplitMix64) -> String {
        let length = Int(random.next() % 20)
        var scalars = String.UnicodeScalarView()
        for _ in 0..<length { scalars.append(randomScalar(using: &random)) }
        return String(scalars)
    }
}

/// A small seeded generator, so a failing seed can be replayed with `OTA_PROPERTY_SEED`.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

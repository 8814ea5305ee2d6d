// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import Foundation
import JSONSchema

/// `ota-cancel-bench schema`: the JSON parser and the command schema's validator alone, on one thread.
///
/// Every message the worker takes is parsed and validated on the MQTT loop thread before it is acknowledged,
/// so these two bound how many commands one worker can take in. Each figure is measured `--repeats` times for
/// `--seconds` each; the best run is reported (on a shared machine the slower runs measure the neighbours),
/// with the median beside it. Run it from a release build: debug builds are 10 to 50 times slower.
struct SchemaBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Measure the JSON parser and the command schema's validator on one thread (validations/s, MB/s)."
    )

    @Option(help: "The command schema file.")
    var schema = "schemas/cancel-command.schema.json"

    @Option(help: "Seconds per measurement.")
    var seconds = 1.0

    @Option(help: "Measurements per figure; the best is reported, the median beside it.")
    var repeats = 3

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    /// The issue's targets, on one core.
    static let oneDeviceTarget = 200_000.0
    static let twoHundredDeviceTarget = 10_000.0

    /// A rate measurement: calls per second, best and median of the repeats.
    struct Rate {
        var best: Double
        var median: Double
    }

    func validate() throws {
        guard seconds > 0, repeats > 0 else { throw ValidationError("--seconds and --repeats must be positive") }
    }

    func run() throws {
        let schemaBytes = try Data(contentsOf: URL(fileURLWithPath: schema))
        let validator = try JSONSchemaValidator(
            schema: JSONParser.parse(schemaBytes),
            options: .init(formatAssertion: true)
        )

        // The README's example command, and the same with 200 and 10,000 devices (the schema's maximum).
        let one = Self.command(devices: 1)
        let twoHundred = Self.command(devices: 200)
        let tenThousand = Self.command(devices: 10_000)
        let invalid = Array(
            #"{"productKey":"a1V4kde1234","firmwareId":"T0F5b5tpFnHQrgfk1234030100","deviceNames":["ab"],"dryRun":"yes"}"#
                .utf8
        )
        for (name, document, valid) in [
            ("1 device", one, true), ("200 devices", twoHundred, true), ("10,000", tenThousand, true),
            ("invalid", invalid, false),
        ] {
            guard validator.validate(try JSONParser.parse(document)).isEmpty == valid else {
                throw ValidationError("the \(name) command is not \(valid ? "valid" : "invalid") against \(schema)")
            }
        }
        let oneValue = try JSONParser.parse(one)
        let twoHundredValue = try JSONParser.parse(twoHundred)

        var sink = 0
        func parseAndValidate(_ document: [UInt8]) -> Rate {
            measure {
                guard let value = try? JSONParser.parse(document) else { return 0 }
                return validator.validate(value).count + 1
            }
        }
        func validateOnly(_ value: JSONValue) -> Rate { measure { validator.validate(value).count + 1 } }
        func parseOnly(_ document: [UInt8]) -> Rate {
            measure {
                guard case .array(let items)? = try? JSONParser.parse(document) else { return 1 }
                return items.count
            }
        }

        let validation: [(String, Int, Rate)] = [
            ("1-device command: parse + validate", one.count, parseAndValidate(one)),
            ("1-device command: validate", one.count, validateOnly(oneValue)),
            ("200-device command: parse + validate", twoHundred.count, parseAndValidate(twoHundred)),
            ("200-device command: validate", twoHundred.count, validateOnly(twoHundredValue)),
            ("10,000-device command: parse + validate", tenThousand.count, parseAndValidate(tenThousand)),
            ("invalid 1-device command (2 errors): parse + validate", invalid.count, parseAndValidate(invalid)),
        ]
        let shapes: [(String, [UInt8])] = [
            ("1-device command", one), ("200-device command", twoHundred), ("10,000-device command", tenThousand),
            ("numbers: 20,000 integers, decimals, exponents", Self.numbers()),
            ("text: 2,000 strings with escapes and non-ASCII", Self.text()),
            ("records: 1,000 nested objects", Self.records()),
        ]
        let parsing = shapes.map { (name: $0.0, bytes: $0.1.count, rate: parseOnly($0.1)) }

        let oneMet = validation[0].2.best >= Self.oneDeviceTarget
        let twoHundredMet = validation[2].2.best >= Self.twoHundredDeviceTarget
        if json {
            var fields = validation.map { "\"\(Self.key($0.0))\":\(Self.format($0.2.best, 0))" }
            fields += parsing.map {
                "\"\(Self.key("parse " + $0.name))MBps\":\(Self.format($0.rate.best * Double($0.bytes) / 1e6, 1))"
            }
            fields.append(
                "\"oneDeviceTargetMet\":\(oneMet),\"twoHundredDeviceTargetMet\":\(twoHundredMet),\"sink\":\(sink)"
            )
            print("{" + fields.joined(separator: ",") + "}")
            return
        }
        print(
            "JSON Schema validation, one thread (best of \(repeats) × \(Self.format(seconds, 1)) s; median in brackets)"
        )
        for (name, bytes, rate) in validation {
            print(
                "  \(Self.pad(name, 54)) \(Self.pad(Self.grouped(rate.best), 11, left: true))/s  (\(Self.grouped(rate.median))/s)  [\(bytes) bytes]"
            )
        }
        print("JSON parsing, one thread")
        for (name, bytes, rate) in parsing {
            let best = rate.best * Double(bytes) / 1e6
            let median = rate.median * Double(bytes) / 1e6
            print(
                "  \(Self.pad(name, 54)) \(Self.pad(Self.format(best, 1), 8, left: true)) MB/s  (\(Self.format(median, 1)) MB/s)  [\(bytes) bytes]"
            )
        }
        print(
            "targets: 1-device command \(Self.grouped(validation[0].2.best))/s vs \(Self.grouped(Self.oneDeviceTarget))/s "
                + (oneMet ? "(met)" : "(NOT MET)") + "; 200-device command \(Self.grouped(validation[2].2.best))/s vs "
                + "\(Self.grouped(Self.twoHundredDeviceTarget))/s " + (twoHundredMet ? "(met)" : "(NOT MET)")
        )
        if sink == 42 { print("") }  // Keeps the measured work observable.

        /// Runs `body` in batches for `seconds`, `repeats` times; `body`'s results feed `sink`.
        func measure(_ body: () -> Int) -> Rate {
            let clock = ContinuousClock()
            // Calibrate: a batch of at least 10 ms, so the clock's cost disappears.
            var batch = 1
            while true {
                let start = clock.now
                for _ in 0..<batch { sink &+= body() }
                if clock.now - start >= .milliseconds(10) { break }
                batch *= 2
            }
            var rates: [Double] = []
            for _ in 0..<repeats {
                var calls = 0
                let start = clock.now
                let end = start + .nanoseconds(Int64(seconds * 1e9))
                while clock.now < end {
                    for _ in 0..<batch { sink &+= body() }
                    calls += batch
                }
                let elapsed = clock.now - start
                let (whole, fraction) = elapsed.components
                rates.append(Double(calls) / (Double(whole) + Double(fraction) / 1e18))
            }
            rates.sort()
            return Rate(best: rates.last!, median: rates[rates.count / 2])
        }
    }

    // MARK: Documents

    /// A command like the README's example, with `devices` device names.
    static func command(devices: Int) -> [UInt8] {
        let names = (1...devices).map { String(format: "\"sensor-%04d\"", $0) }.joined(separator: ",")
        return Array(
            (#"{"productKey":"a1V4kde1234","firmwareId":"T0F5b5tpFnHQrgfk1234030100","deviceNames":["# + names
                + #"],"reason":"crash loop in 2.4.1"}"#).utf8
        )
    }

    /// Deterministic pseudo-random numbers for the documents (the same bytes on every run).
    struct Pseudorandom {
        var state: UInt64 = 0x5EED
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    static func numbers() -> [UInt8] {
        var sequence = Pseudorandom()
        let literals = (0..<20_000).map { index -> String in
            switch index % 4 {
            case 0: return String(sequence.next(1_000_000))
            case 1: return "-\(sequence.next(1000)).\(sequence.next(1_000_000))"
            case 2: return "\(sequence.next(10)).\(sequence.next(100_000))e\(sequence.next(600) - 300)"
            default: return "123456789012345678901234567890\(sequence.next(10))"
            }
        }
        return Array(("[" + literals.joined(separator: ",") + "]").utf8)
    }

    static func text() -> [UInt8] {
        var sequence = Pseudorandom()
        let pieces = [
            "plain words ", "é", "中文", "🐲", #"\n"#, #"\""#, #"\u00e9"#, #"\ud83d\ude00"#, "tab\\t", "/", "ASCII-only ",
        ]
        let strings = (0..<2_000).map { _ in
            "\"" + (0..<(8 + sequence.next(24))).map { _ in pieces[sequence.next(pieces.count)] }.joined() + "\""
        }
        return Array(("[" + strings.joined(separator: ",") + "]").utf8)
    }

    static func records() -> [UInt8] {
        var sequence = Pseudorandom()
        let records = (0..<1_000).map { index in
            #"{"id":\#(index),"name":"device \#(sequence.next(100_000))","active":\#(index % 3 == 0),"#
                + #""tags":["edge","v\#(sequence.next(9)).\#(sequence.next(9))","zone-\#(sequence.next(50))"],"#
                + #""geo":{"lat":\#(sequence.next(90)).\#(sequence.next(1_000_000)),"lon":-\#(sequence.next(180)).\#(sequence.next(1_000_000))},"#
                + #""firmware":{"version":"2.4.\#(sequence.next(20))","channel":null,"history":[1,2,3]}}"#
        }
        return Array(("[" + records.joined(separator: ",") + "]").utf8)
    }

    // MARK: Formatting

    static func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

    /// `1234567.8` → `1,234,568`.
    static func grouped(_ value: Double) -> String {
        let digits = String(Int(value.rounded()))
        var result = ""
        for (offset, digit) in digits.enumerated() {
            if offset > 0 && (digits.count - offset) % 3 == 0 { result += "," }
            result.append(digit)
        }
        return result
    }

    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? padding + text : text + padding
    }

    /// `"1-device command: parse + validate"` → `oneDeviceCommandParseValidate`-like camel case key.
    static func key(_ name: String) -> String {
        let words = name.split { !$0.isLetter && !$0.isNumber }.map(String.init)
        guard let first = words.first else { return "figure" }
        return first.lowercased() + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
}

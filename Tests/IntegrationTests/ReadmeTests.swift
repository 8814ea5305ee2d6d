// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import TestSupport
import Testing

/// The README is the user's reference: its options table lists exactly what `run --help` offers, and its examples
/// work against the demo's simulator as they stand.
@Suite("README")
struct ReadmeTests {
    /// The long options `run --help` lists (an inverted flag once, by its positive name), without `--help`.
    static func helpOptions(_ help: String) -> Set<String> {
        var options = Set<String>()
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            // An option's own line is indented two spaces; its wrapped help text is indented further.
            guard let match = line.prefixMatch(of: /\ \ (?:-[a-zA-Z],\ )?(--[a-z0-9][a-z0-9-]*)/) else { continue }
            options.insert(String(match.output.1))
        }
        options.remove("--help")
        return options
    }

    /// The options named in the first column of the README table that starts with `| option | default |`.
    static func readmeOptions(_ readme: String) -> Set<String> {
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false)
        guard let header = lines.firstIndex(where: { $0.hasPrefix("| option | default |") }) else { return [] }
        var options = Set<String>()
        for line in lines[(header + 2)...] {
            guard line.hasPrefix("|") else { break }
            let firstColumn = line.dropFirst().prefix { $0 != "|" }
            for match in firstColumn.matches(of: /`(--[a-z0-9][a-z0-9-]*)`/) { options.insert(String(match.output.1)) }
        }
        return options
    }

    @Test("the parsers find options in sample text (so that an empty comparison cannot pass)")
    func parsersWork() {
        let help = """
            OPTIONS:
              --config <config>       JSON file of settings.
              --exit-on-connection-failure/--no-exit-on-connection-failure
                                      Exit (non-zero) ... --not-an-option in wrapped text
              -h, --help              Show help information.
            """
        #expect(Self.helpOptions(help) == ["--config", "--exit-on-connection-failure"])
        let readme = "x\n| option | default | |\n|---|---|---|\n| `--a`, `--b` | `1` | see `--c` |\n\n| `--d` | |\n"
        #expect(Self.readmeOptions(readme) == ["--a", "--b"])
    }

    @Test("every option of run --help is in the README's options table, and the table names no other")
    func tableMatchesHelp() async throws {
        let result = try await runProcess(try workerBinary(), ["run", "--help"])
        #expect(result.exitCode == 0, "\(result)")
        let help = Self.helpOptions(result.stdout)
        #expect(help.count > 40, "run --help lists \(help.count) options: the parser may be wrong")
        let readme = try String(contentsOfFile: WorkerStack.repositoryRoot + "/README.md", encoding: .utf8)
        let table = Self.readmeOptions(readme)
        #expect(
            help.subtracting(table).isEmpty,
            "in run --help, missing from the README table: \(help.subtracting(table).sorted())"
        )
        #expect(
            table.subtracting(help).isEmpty,
            "in the README table, not in run --help: \(table.subtracting(help).sorted())"
        )
    }

    /// The shell blocks of the "Sending a command" section that run `mosquitto_rr`.
    static func sendingExamples(_ readme: String) -> [String] {
        guard let start = readme.range(of: "## Sending a command"),
            let end = readme.range(of: "### The command", range: start.upperBound..<readme.endIndex)
        else { return [] }
        let section = readme[start.upperBound..<end.lowerBound]
        return section.matches(of: /```sh\n([\s\S]*?)```/).map { String($0.output.1) }.filter {
            $0.contains("mosquitto_rr")
        }
    }

    @Test("the examples of 'Sending a command' get succeeded replies from a worker and the demo's simulator")
    func examplesWork() async throws {
        let readme = try String(contentsOfFile: WorkerStack.repositoryRoot + "/README.md", encoding: .utf8)
        let examples = Self.sendingExamples(readme)
        #expect(examples.count == 2)
        // The reply shown in the README, for its field names.
        let shown = try #require(
            readme.firstMatch(of: /```json\n(\{"version":2,"correlationId":"rollback-42"[\s\S]*?)```/)
        )
        let shownReply = try JSONParser.parse(Data(String(shown.output.1).utf8))
        try await withWorkerStack { stack in
            for example in examples {
                // As the README says: the demo's broker address added to each mosquitto_rr.
                let script = example.replacingOccurrences(
                    of: "mosquitto_rr ",
                    with: "mosquitto_rr -h 127.0.0.1 -p \(stack.broker.port) -W 30 "
                )
                let result = try await runProcess("/bin/sh", ["-c", script], timeout: .seconds(40))
                #expect(result.exitCode == 0, "\(script)\n\(result)")
                let reply = try stack.reply(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
                #expect(reply["status"]?.stringValue == "succeeded", "\(result.stdout)")
                #expect(["rollback-42", "rollback-43"].contains(reply["correlationId"]?.stringValue ?? ""))
                if reply["correlationId"]?.stringValue == "rollback-42" {
                    let fields = Set(reply.objectValue?.keys ?? [])
                    #expect(Set(shownReply.objectValue?.keys ?? []) == fields, "the README shows other fields")
                    #expect(reply["cancelledDevices"] == shownReply["cancelledDevices"])
                    // The verified reply the README shows: the same groups, every device cancelled.
                    let groups = ["canceled", "alreadyUpgraded", "failed", "stillActive", "noTask", "unverified"]
                    for group in groups {
                        #expect(reply["devices"]?[group] == shownReply["devices"]?[group], "devices.\(group)")
                    }
                }
            }
        }
    }

    /// The shell blocks of the "Sending a command" section that run `ota-cancel-worker request`.
    static func requestExamples(_ readme: String) -> [String] {
        guard let start = readme.range(of: "## Sending a command"),
            let end = readme.range(of: "### The command", range: start.upperBound..<readme.endIndex)
        else { return [] }
        return readme[start.upperBound..<end.lowerBound].matches(of: /```sh\n([\s\S]*?)```/).map {
            String($0.output.1)
        }.filter { $0.contains("ota-cancel-worker request") }
    }

    @Test("the request example of 'Sending a command' prints the summary the README shows, and exits 0")
    func requestExampleWorks() async throws {
        let readme = try String(contentsOfFile: WorkerStack.repositoryRoot + "/README.md", encoding: .utf8)
        let examples = Self.requestExamples(readme)
        #expect(examples.count == 1)
        let shown = try #require(readme.firstMatch(of: /```\n(succeeded \(correlation id [\s\S]*?)```/))
        let shownLines = String(shown.output.1).split(separator: "\n").map {
            String($0.replacing(/[0-9A-Fa-f]{8}-[0-9A-Fa-f.-]*/, with: "ID"))
        }
        try await withWorkerStack { stack in
            for example in examples {
                let script = example.replacingOccurrences(
                    of: "ota-cancel-worker request",
                    with: "\(try workerBinary()) request --broker-port \(stack.broker.port)"
                )
                let result = try await runProcess("/bin/sh", ["-c", script], timeout: .seconds(60))
                #expect(result.exitCode == 0, "\(script)\n\(result)")
                // The same lines but for the ids: a UUID here, its first group and "..." in the README.
                func normalized(_ text: String) -> [String] {
                    text.split(separator: "\n").map {
                        String($0.replacing(/[0-9A-Fa-f]{8}-[0-9A-Fa-f.-]*/, with: "ID"))
                    }
                }
                #expect(normalized(result.stdout) == shownLines, "\(result.stdout)")
            }
        }
    }
}

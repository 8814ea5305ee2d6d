// SPDX-License-Identifier: Apache-2.0
import Worker

/// Checks of the resolved settings that look at more than one value: the topics, and the `OTA_CANCEL_*`
/// variables nobody reads.
extension WorkerConfiguration {
    /// Variables the worker accepts beside its options' own (`OTA_CANCEL_<OPTION>`): the secrets (never options),
    /// the configuration file, and two that other programs read from the same environment: the tests'
    /// `OTA_CANCEL_WORKER_BINARY` and `OTA_CANCEL_REVISION`, which the build reads (the image's build stage sets
    /// it) and the worker ignores.
    public static let otherEnvironmentVariables: Set<String> = [
        secretEnvironmentVariable, environmentPrefix + "BROKER_PASSWORD", environmentPrefix + "CONFIG",
        environmentPrefix + "WORKER_BINARY", environmentPrefix + "REVISION",
    ]

    /// The command topic must be a filter the broker accepts (a bad one is refused by the broker at every
    /// SUBSCRIBE, so the worker would reconnect for ever), the allow-list entries filters, and the two topics the
    /// worker publishes to topic names.
    static func checkTopics(
        _ worker: CancelWorkerConfiguration,
        _ arguments: some WorkerArguments,
        _ settings: SettingResolver
    ) throws(WorkerError) {
        func refuse(_ name: String, flagGiven: Bool, _ value: String, _ what: String, _ problem: String) -> WorkerError
        {
            let shown = LogEscaping.escape(value.clipped(toScalars: 200))
            return .invalidConfiguration(
                "\(name) (from \(settings.origin(name, flagGiven: flagGiven))) '\(shown)' is not \(what): \(problem)"
            )
        }
        if let problem = MQTTTopic.problemWithSubscription(worker.commandTopic) {
            throw refuse(
                "command-topic",
                flagGiven: arguments.commandTopic != nil,
                worker.commandTopic,
                "a valid topic filter",
                problem
            )
        }
        for filter in worker.replyTopicAllowList {
            if let problem = MQTTTopic.problemWithTopicFilter(filter) {
                throw refuse(
                    "reply-topic-allow",
                    flagGiven: arguments.replyTopicAllowList != nil,
                    filter,
                    "a valid topic filter",
                    problem
                )
            }
        }
        for (name, topic, flag) in [
            ("default-reply-topic", worker.defaultReplyTopic, arguments.defaultReplyTopic),
            ("dead-letter-topic", worker.deadLetterTopic, arguments.deadLetterTopic),
        ] {
            if let problem = MQTTTopic.problemWithTopicName(topic) {
                throw refuse(name, flagGiven: flag != nil, topic, "a topic that can be published to", problem)
            }
        }
    }
}

extension SettingResolver {
    /// Refuses `OTA_CANCEL_*` variables that name no setting: a typo (`OTA_CANCEL_BROKER_HOTS`) would otherwise
    /// leave the default in place silently, as a typo in the configuration file would (and that one is refused).
    ///
    /// Call it after every setting was looked up: the known variables are those of the settings looked up (so an
    /// option added later is known without a list to keep) plus ``WorkerConfiguration/otherEnvironmentVariables``.
    /// Only the variables' names are shown, never a value.
    func checkEnvironment() throws(WorkerError) {
        let known = Set(lookedUp.map(Self.variable(for:))).union(WorkerConfiguration.otherEnvironmentVariables)
        let unknown = environment.keys.filter { $0.hasPrefix(WorkerConfiguration.environmentPrefix) }
            .filter { !known.contains($0) }.sorted()
        guard !unknown.isEmpty else { return }
        let named = unknown.map { variable in
            let shown = LogEscaping.escape(variable.clipped(toScalars: 80))
            let closest = ClosestName.closest(to: variable, among: known)
            // A bare `..._PORT` close to a setting is more likely a typo (OTA_CANCEL_BROKR_PORT) than a Service.
            if Self.isKubernetesServiceLink(variable), closest == nil || !variable.hasSuffix("_PORT") {
                return "\(shown) (set by Kubernetes for a Service named ota-cancel-...: set enableServiceLinks: false)"
            }
            guard let closest else { return shown }
            return "\(shown) (did you mean \(closest)?)"
        }
        throw .invalidConfiguration(
            "unknown environment variable\(unknown.count == 1 ? "" : "s") "
                + named.joined(separator: ", ")
                + ": the worker reads OTA_CANCEL_<OPTION> for its options (see run --help); "
                + "correct or remove \(unknown.count == 1 ? "it" : "them")"
        )
    }
}

extension SettingResolver {
    /// Whether `name` has the shape of the variables Kubernetes gives a pod for every Service of its namespace
    /// (`<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT[_<PORT NAME>]`, `<SERVICE>_PORT[_<n>_TCP[_PROTO|_PORT|_ADDR]]`):
    /// a Service named `ota-cancel-worker-metrics` makes `OTA_CANCEL_WORKER_METRICS_PORT`, in the worker's prefix.
    static func isKubernetesServiceLink(_ name: String) -> Bool {
        let parts = name.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        if let service = parts.firstIndex(of: "SERVICE"), service + 1 < parts.count,
            ["HOST", "PORT"].contains(parts[service + 1])
        {
            return true
        }
        guard let port = parts.lastIndex(of: "PORT") else { return false }
        let rest = parts[(port + 1)...]
        if rest.isEmpty { return true }
        guard rest.count >= 2, Int(rest[rest.startIndex]) != nil,
            ["TCP", "UDP", "SCTP"].contains(rest[rest.startIndex + 1])
        else { return false }
        return rest.count == 2 || (rest.count == 3 && ["PROTO", "PORT", "ADDR"].contains(rest[rest.startIndex + 2]))
    }
}

/// The known name closest to a mistyped one, for "did you mean ...?".
enum ClosestName {
    /// The name of `candidates` with the fewest single-character edits from `name`, when it is close enough to be
    /// a likely typo (at most a third of the name's length, and at least 1, edits); ties go to the first in order.
    static func closest(to name: String, among candidates: some Sequence<String>) -> String? {
        let limit = max(1, name.count / 3)
        var best: (name: String, distance: Int)?
        for candidate in candidates.sorted() {
            let distance = editDistance(name, candidate)
            if distance <= limit, distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        return best?.name
    }

    /// Levenshtein distance: insertions, deletions and substitutions of one character each count 1.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

// SPDX-License-Identifier: Apache-2.0
import Foundation
import TestSupport
import Testing

/// `deploy/kubernetes/`: every manifest validated by `kubernetes-validate` (PyPI, pinned) against the schemas of
/// Kubernetes releases, and what the README promises of them checked: a fixed client id and a volume per pod,
/// probes on the ops port, a non-root numeric user, a Secret referenced and not shipped, settings the worker
/// accepts. No cluster runs here, so nothing is applied.
///
/// The validator lives in a virtual environment in the temporary folder, made once and reused
/// (`OTA_KUBERNETES_VALIDATE_VENV` overrides the place). If it cannot be installed, the tests fail and say why.
@Suite("Kubernetes manifests", .timeLimit(.minutes(10)))
struct KubernetesManifestTests {
    static let package = "kubernetes-validate==1.37.0"
    /// The oldest release the manifests are meant for, and the newest the validator knows.
    static let kubernetesVersions = ["1.31.0", "1.37.0"]

    static let folder = WorkerStack.repositoryRoot + "/deploy/kubernetes"
    /// Applied by `kubectl apply -k`; the example Secret is not (it holds a placeholder).
    static let kustomization = "kustomization.yaml"
    static let exampleSecret = "secret.example.yaml"

    /// Every manifest (`*.yaml` but the kustomization, which is kustomize's input rather than a resource).
    static func manifests() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }
            .filter { $0 != kustomization }.sorted()
    }

    static var environmentDirectory: String {
        if let path = ProcessInfo.processInfo.environment["OTA_KUBERNETES_VALIDATE_VENV"], !path.isEmpty {
            return path
        }
        return FileManager.default.temporaryDirectory.appendingPathComponent(
            "ota-cancel-worker-venvs/kubernetes-validate-1.37.0"
        ).path
    }

    /// The environment, made once for all the tests of a run (they start together).
    static let environment = Task {
        try await PythonVirtualEnvironment.python(at: environmentDirectory, packages: [package])
    }

    /// The environment's python (it also has PyYAML, a dependency of the validator).
    static func python() async throws -> String {
        try await environment.value
    }

    /// Runs `kubernetes-validate --strict` on `files` for `version`.
    static func validate(_ files: [String], version: String) async throws -> ProcessResult {
        // As a module: the environment was built under another name, which its scripts' #! lines still carry.
        try await runProcess(
            try await python(),
            ["-m", "kubernetes_validate", "--strict", "--kubernetes-version", version] + files,
            timeout: .seconds(120)
        )
    }

    /// Lines that are not a pass: errors, and warnings (an unknown kind or API version is only a warning, and
    /// would leave a resource unchecked).
    static func problems(_ result: ProcessResult) -> [String] {
        (result.stdout + "\n" + result.stderr).split(separator: "\n").map(String.init)
            .filter { !$0.isEmpty && !$0.hasPrefix("INFO ") }
    }

    /// Every manifest's documents, parsed (YAML to JSON by PyYAML), by file name.
    static func documents() async throws -> [String: [[String: Any]]] {
        let script = """
            import json, os, sys, yaml
            files = {os.path.basename(f): [d for d in yaml.safe_load_all(open(f)) if d] for f in sys.argv[1:]}
            print(json.dumps(files))
            """
        let files = try manifests().map { folder + "/" + $0 } + [folder + "/" + kustomization]
        let result = try await runProcess(try await python(), ["-c", script] + files)
        try #require(result.exitCode == 0, "\(result)")
        let parsed = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: [[String: Any]]]
        return try #require(parsed, "\(result.stdout)")
    }

    /// The one document of `kind` (named `name`, if given) among all files.
    static func resource(
        _ kind: String,
        named name: String? = nil,
        in documents: [String: [[String: Any]]]
    ) throws
        -> [String: Any]
    {
        let matches = documents.values.flatMap { $0 }.filter {
            $0["kind"] as? String == kind && (name == nil || value($0, "metadata", "name") as? String == name)
        }
        try #require(matches.count == 1, "\(matches.count) \(kind) resources named \(name ?? "anything")")
        return matches[0]
    }

    @Test("every manifest passes kubernetes-validate --strict for Kubernetes 1.31 and 1.37; a broken one does not")
    func kubernetesValidate() async throws {
        let files = try Self.manifests().map { Self.folder + "/" + $0 }
        try #require(files.count >= 4, "manifests: \(files)")
        let documents = try await Self.documents()
        let resources = try Self.manifests().reduce(0) { $0 + (documents[$1]?.count ?? 0) }
        for version in Self.kubernetesVersions {
            let result = try await Self.validate(files, version: version)
            #expect(result.exitCode == 0, "Kubernetes \(version):\n\(result)")
            #expect(Self.problems(result).isEmpty, "Kubernetes \(version): \(Self.problems(result))")
            let passed = result.stdout.split(separator: "\n").filter {
                $0.hasPrefix("INFO ") && $0.contains(" passed ")
            }
            #expect(passed.count == resources, "\(passed.count) of \(resources) resources passed:\n\(result.stdout)")
        }

        // The check has teeth: a misspelt field (strict), a wrong type, and an unknown kind are all caught.
        let scratch = try makeTemporaryDirectory("ota-k8s-broken")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let statefulSet = try String(contentsOfFile: Self.folder + "/statefulset.yaml", encoding: .utf8)
        let broken = [
            "misspelt.yaml": statefulSet.replacingOccurrences(of: "runAsUser:", with: "runAsUsr:"),
            "type.yaml": statefulSet.replacingOccurrences(of: "replicas: 2", with: "replicas: two"),
            "kind.yaml": "apiVersion: apps/v1\nkind: StatefullSet\nmetadata:\n  name: x\n",
        ]
        for (name, text) in broken {
            try text.write(toFile: scratch + "/" + name, atomically: true, encoding: .utf8)
            let result = try await Self.validate([scratch + "/" + name], version: Self.kubernetesVersions[1])
            #expect(!Self.problems(result).isEmpty, "\(name) was not refused: \(result)")
        }
    }

    @Test("kubectl apply -k applies every manifest but the example Secret")
    func kustomization() async throws {
        let documents = try await Self.documents()
        let kustomization = try #require(documents[Self.kustomization]?.first)
        #expect(kustomization["kind"] as? String == "Kustomization")
        let resources = (kustomization["resources"] as? [String] ?? []).sorted()
        #expect(resources == (try Self.manifests()).filter { $0 != Self.exampleSecret })
        let secret = try Self.resource("Secret", in: documents)
        let placeholder = value(secret, "stringData", "access-key-secret") as? String ?? ""
        #expect(placeholder.hasPrefix("PLACEHOLDER"), "the example Secret holds a clearly marked placeholder")
    }

    @Test(
        "the StatefulSet: client id from the pod name, a volume per pod, numeric non-root user, ops probes, drain time"
    )
    func statefulSet() async throws {
        let documents = try await Self.documents()
        let set = try Self.resource("StatefulSet", in: documents)
        let pod = try #require(value(set, "spec", "template", "spec") as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let environment = (container["env"] as? [[String: Any]]) ?? []
        func variable(_ name: String) -> [String: Any]? { environment.first { $0["name"] as? String == name } }

        // A fixed client id per pod: its name (ota-cancel-worker-0, -1, ...).
        #expect(
            value(variable("OTA_CANCEL_CLIENT_ID"), "valueFrom", "fieldRef", "fieldPath") as? String == "metadata.name"
        )
        // A volume per pod for the state folder, which lies in it.
        let claims = value(set, "spec", "volumeClaimTemplates") as? [[String: Any]] ?? []
        let claim = try #require(claims.first.flatMap { value($0, "metadata", "name") as? String })
        let mounts = container["volumeMounts"] as? [[String: Any]] ?? []
        let stateMount = try #require(mounts.first { $0["name"] as? String == claim }?["mountPath"] as? String)
        let stateDirectory = try #require(variable("OTA_CANCEL_STATE_DIR")?["value"] as? String)
        #expect(stateDirectory.hasPrefix(stateMount + "/"), "the worker makes its 0700 folder inside the volume")
        // The headless Service governs it.
        let headless = try Self.resource("Service", named: value(set, "spec", "serviceName") as? String, in: documents)
        #expect(value(headless, "spec", "clusterIP") as? String == "None")
        // Service links would put OTA_CANCEL_WORKER_* variables in the worker's namespace of settings.
        #expect(pod["enableServiceLinks"] as? Bool == false)

        // Non-root, numeric, and the image's user.
        let dockerfile = try String(contentsOfFile: WorkerStack.repositoryRoot + "/Dockerfile", encoding: .utf8)
        let imageUser = try #require(
            dockerfile.split(separator: "\n").last { $0.hasPrefix("USER ") }?.dropFirst(5).split(separator: ":").first
        )
        #expect(value(pod, "securityContext", "runAsNonRoot") as? Bool == true)
        #expect(value(pod, "securityContext", "runAsUser") as? Int == Int(imageUser))
        #expect(value(pod, "securityContext", "fsGroup") as? Int == Int(imageUser))
        #expect(value(pod, "securityContext", "seccompProfile", "type") as? String == "RuntimeDefault")
        #expect(value(container, "securityContext", "readOnlyRootFilesystem") as? Bool == true)
        #expect(value(container, "securityContext", "allowPrivilegeEscalation") as? Bool == false)
        #expect(value(container, "securityContext", "capabilities", "drop") as? [String] == ["ALL"])

        // Probes on the port named ops: liveness never depends on the broker, readiness does.
        let ports = container["ports"] as? [[String: Any]] ?? []
        #expect(ports.contains { $0["name"] as? String == "ops" && $0["containerPort"] as? Int == 9464 })
        for (probe, path) in [
            ("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready"), ("startupProbe", "/health/live"),
        ] {
            #expect(value(container, probe, "httpGet", "path") as? String == path, "\(probe)")
            #expect(value(container, probe, "httpGet", "port") as? String == "ops", "\(probe)")
        }
        // Time to drain: above the drain timeout the ConfigMap sets (default 20 s), with room for the flush.
        let configMap = try Self.resource("ConfigMap", in: documents)
        let settings = try Self.settings(configMap)
        let drain = settings["drain-timeout"] as? Double ?? 20
        let grace = try #require(pod["terminationGracePeriodSeconds"] as? Int)
        #expect(Double(grace) >= drain + 10, "terminationGracePeriodSeconds \(grace) for a drain of \(drain) s")
        #expect(value(container, "resources", "limits", "memory") != nil)
        #expect(value(container, "resources", "requests", "cpu") != nil)

        // The secret is a reference: mounted from a Secret that is not applied, at the path the worker reads.
        let secretFile = try #require(variable("OTA_CANCEL_ACCESS_KEY_SECRET_FILE")?["value"] as? String)
        let volumes = pod["volumes"] as? [[String: Any]] ?? []
        let secretVolume = try #require(volumes.first { $0["secret"] != nil })
        let secretMount = try #require(
            mounts.first { $0["name"] as? String == secretVolume["name"] as? String }?["mountPath"] as? String
        )
        #expect(secretFile == secretMount + "/access-key-secret")
        let secret = try Self.resource("Secret", in: documents)
        #expect(
            value(secretVolume, "secret", "secretName") as? String == value(secret, "metadata", "name") as? String
        )
        #expect(documents[Self.exampleSecret]?.count == 1, "the only Secret is the example")
        // Nobody puts the secret itself in the environment or the ConfigMap.
        #expect(variable("OTA_CANCEL_ACCESS_KEY_SECRET") == nil)
        #expect(settings["access-key-secret"] == nil)
    }

    @Test("the metrics Service selects the workers' ops port, with prometheus.io annotations, not-ready pods kept")
    func metricsService() async throws {
        let documents = try await Self.documents()
        let set = try Self.resource("StatefulSet", in: documents)
        let podLabels = value(set, "spec", "template", "metadata", "labels") as? [String: String] ?? [:]
        let services = documents.values.flatMap { $0 }.filter { $0["kind"] as? String == "Service" }
        #expect(services.count == 2, "a headless Service and a metrics Service")
        let metrics = try #require(services.first { value($0, "spec", "clusterIP") as? String != "None" })
        let annotations = value(metrics, "metadata", "annotations") as? [String: String] ?? [:]
        #expect(annotations["prometheus.io/scrape"] == "true")
        #expect(annotations["prometheus.io/port"] == "9464")
        #expect(annotations["prometheus.io/path"] == "/metrics")
        #expect(value(metrics, "spec", "publishNotReadyAddresses") as? Bool == true)
        for service in services {
            let selector = value(service, "spec", "selector") as? [String: String] ?? [:]
            #expect(!selector.isEmpty && selector.allSatisfy { podLabels[$0.key] == $0.value }, "\(selector)")
            let ports = value(service, "spec", "ports") as? [[String: Any]] ?? []
            #expect(ports.contains { $0["port"] as? Int == 9464 && $0["targetPort"] as? String == "ops" })
        }
    }

    @Test("the ConfigMap's settings, with the StatefulSet's environment and mounts, pass the worker's check-config")
    func settingsAccepted() async throws {
        let documents = try await Self.documents()
        let set = try Self.resource("StatefulSet", in: documents)
        let pod = try #require(value(set, "spec", "template", "spec") as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let configMap = try Self.resource("ConfigMap", in: documents)

        // The pod's file system, in a scratch folder: each mount becomes a folder, filled as Kubernetes fills it.
        let root = try makeTemporaryDirectory("ota-k8s-pod")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var mountPaths = [String: String]()  // mount path in the pod → folder here
        let volumes = pod["volumes"] as? [[String: Any]] ?? []
        for mount in container["volumeMounts"] as? [[String: Any]] ?? [] {
            let name = try #require(mount["name"] as? String)
            let path = try #require(mount["mountPath"] as? String)
            let local = root + "/" + name
            try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
            mountPaths[path] = local
            let volume = volumes.first { $0["name"] as? String == name }
            if volume?["configMap"] != nil {
                for (key, text) in configMap["data"] as? [String: String] ?? [:] {
                    try text.write(toFile: local + "/" + key, atomically: true, encoding: .utf8)
                }
            } else if volume?["secret"] != nil {
                try "not-the-real-secret\n".write(
                    toFile: local + "/access-key-secret",
                    atomically: true,
                    encoding: .utf8
                )
            }
        }
        func local(_ path: String) -> String {
            for (mounted, folder) in mountPaths where path == mounted || path.hasPrefix(mounted + "/") {
                return folder + path.dropFirst(mounted.count)
            }
            return path
        }
        var environment = [String: String]()
        for variable in container["env"] as? [[String: Any]] ?? [] {
            let name = try #require(variable["name"] as? String)
            if let text = variable["value"] as? String {
                environment[name] = local(text)
            } else if value(variable, "valueFrom", "fieldRef", "fieldPath") as? String == "metadata.name" {
                environment[name] = "ota-cancel-worker-0"
            } else {
                Issue.record("\(name): a value this test cannot give")
            }
        }
        // The schemas as the worker finds them in a checkout (the image's binary has them built in).
        environment["OTA_CANCEL_SCHEMA_DIR"] = WorkerStack.repositoryRoot + "/schemas"
        let arguments = container["args"] as? [String] ?? []
        #expect(arguments == ["run"])
        let result = try await runProcess(try workerBinary(), ["check-config"], environment: environment)
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stdout.contains("ota-cancel-worker-0"), "the client id is the pod's name:\n\(result.stdout)")
        #expect(result.stdout.contains("$share/cancel-workers/ota/cancel/request"), "\(result.stdout)")
        #expect(!result.stdout.contains("not-the-real-secret") && !result.stderr.contains("not-the-real-secret"))
    }

    /// The worker's settings file in the ConfigMap, parsed.
    static func settings(_ configMap: [String: Any]) throws -> [String: Any] {
        let text = try #require(value(configMap, "data", "config.json") as? String)
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }
}

/// The value at `keys` in nested dictionaries, or `nil` where one is missing.
private func value(_ object: Any?, _ keys: String...) -> Any? {
    var current = object
    for key in keys { current = (current as? [String: Any])?[key] }
    return current
}

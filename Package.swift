// swift-tools-version:6.2
// SPDX-License-Identifier: Apache-2.0
//
// ota-cancel-worker: MQTT "cancel firmware upgrade" commands in, signed CancelOTATaskByDevice calls out,
// correlated replies back. The module graph points one way:
//   CMosquitto ← Mosquitto ← Worker ← WorkerApp ← ota-cancel-worker
//   JSONSchema ← Worker;  PlatformSignature ← PlatformAPI ← Worker;  PlatformSignature ← PlatformSimulator
import PackageDescription

/// Settings shared by every target of ours (not by dependencies).
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
    .enableUpcomingFeature("InferIsolatedConformances"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "ota-cancel-worker",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ota-cancel-worker", targets: ["ota-cancel-worker"]),
        .executable(name: "ota-platform-sim", targets: ["ota-platform-sim"]),
        .executable(name: "ota-cancel-bench", targets: ["ota-cancel-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // MARK: C boundary: the only place that sees libmosquitto.
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"]), .brew(["mosquitto"])]
        ),
        .target(
            name: "Mosquitto",
            dependencies: [
                "CMosquitto",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Pure modules.
        .target(name: "JSONSchema", swiftSettings: strictSettings),
        .target(
            name: "PlatformSignature",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),

        // MARK: Platform client and simulator.
        .target(
            name: "PlatformAPI",
            dependencies: [
                "PlatformSignature",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "PlatformSimulator",
            dependencies: [
                "PlatformSignature",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Build information: the git revision and the schemas, baked into WorkerApp at build time.
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),

        // MARK: The worker.
        .target(
            name: "Worker",
            dependencies: [
                "Mosquitto",
                "JSONSchema",
                "PlatformAPI",
                "PlatformSignature",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WorkerApp",
            dependencies: [
                "Worker",
                "Mosquitto",
                "JSONSchema",
                "PlatformAPI",
                "PlatformSignature",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings,
            plugins: ["BuildInfoPlugin"]
        ),

        // MARK: Executables (thin).
        .executableTarget(
            name: "ota-cancel-worker",
            dependencies: [
                "WorkerApp",
                "Worker",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "ota-platform-sim",
            dependencies: [
                "PlatformSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        .executableTarget(
            name: "ota-cancel-bench",
            dependencies: [
                "Mosquitto",
                "JSONSchema",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Test support: real processes (mosquitto) on free loopback ports. Used by tests only.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),

        // MARK: Tests.
        .testTarget(
            name: "JSONSchemaTests",
            dependencies: ["JSONSchema"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PlatformSignatureTests",
            dependencies: ["PlatformSignature"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MosquittoTests",
            dependencies: ["Mosquitto", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PlatformAPITests",
            dependencies: [
                "PlatformAPI",
                "PlatformSignature",
                "PlatformSimulator",
                "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PlatformSimulatorTests",
            dependencies: [
                "PlatformSimulator",
                "PlatformSignature",
                "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "Worker", "JSONSchema", "PlatformAPI", "Mosquitto", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "WorkerApp",
                "Worker",
                "Mosquitto",
                "JSONSchema",
                "PlatformAPI",
                "PlatformSimulator",
                "PlatformSignature",
                "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)

// SPDX-License-Identifier: Apache-2.0
import Foundation

/// A throwaway PKI made with the `openssl` command line in a fresh temporary directory: a CA, a broker
/// certificate for 127.0.0.1/localhost, a broker certificate whose names match neither, a client certificate, a
/// second unrelated CA, and an encrypted copy of the client key. EC P-256 keys keep generation fast.
public final class TestPKI: Sendable {
    public let directory: String

    private init(directory: String) { self.directory = directory }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func path(_ name: String) -> String { directory + "/" + name }

    public var caFile: String { path("ca.crt") }
    public var otherCAFile: String { path("other-ca.crt") }
    public var serverCertificate: String { path("server.crt") }
    public var serverKey: String { path("server.key") }
    public var wrongNameCertificate: String { path("wrong-name.crt") }
    public var wrongNameKey: String { path("wrong-name.key") }
    public var clientCertificate: String { path("client.crt") }
    public var clientKey: String { path("client.key") }
    public var encryptedClientKey: String { path("client-encrypted.key") }

    public static func make() async throws -> TestPKI {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mosquitto-pki-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pki = TestPKI(directory: directory)
        for ca in ["ca", "other-ca"] {
            try await openssl([
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", pki.path("\(ca).key"), "-out", pki.path("\(ca).crt"), "-days", "2",
                "-subj", "/CN=ota-cancel-worker test \(ca)",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ])
        }
        try await pki.issue(
            "server",
            extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"
        )
        try await pki.issue("wrong-name", extensions: "subjectAltName=DNS:broker.invalid\nextendedKeyUsage=serverAuth")
        try await pki.issue("client", extensions: "extendedKeyUsage=clientAuth")
        try await openssl([
            "pkey", "-in", pki.clientKey, "-aes256", "-passout", "pass:secret", "-out", pki.encryptedClientKey,
        ])
        return pki
    }

    /// Issues `<name>.crt`/`<name>.key` signed by the test CA, with the given X.509 v3 extensions.
    private func issue(_ name: String, extensions: String) async throws {
        try await Self.openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)",
        ])
        try (extensions + "\n").write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
        let serial = "0x" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16)
        try await Self.openssl([
            "x509", "-req", "-in", path("\(name).csr"), "-CA", caFile, "-CAkey", path("ca.key"),
            "-set_serial", serial, "-days", "2", "-out", path("\(name).crt"), "-extfile", path("\(name).ext"),
        ])
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await runProcess("openssl", arguments, timeout: .seconds(30))
        guard result.exitCode == 0 else {
            throw TestSupportError("openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(result)")
        }
    }

    /// Broker config lines for a TLS listener. They follow the generated `listener` line, so they configure it.
    public func brokerTLSConfig(
        certificate: String? = nil,
        key: String? = nil,
        requireCertificate: Bool = false
    ) -> [String] {
        [
            "cafile \(caFile)",
            "certfile \(certificate ?? serverCertificate)",
            "keyfile \(key ?? serverKey)",
        ] + (requireCertificate ? ["require_certificate true"] : [])
    }
}

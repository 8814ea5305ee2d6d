// SPDX-License-Identifier: Apache-2.0
import Foundation

extension MosquittoConfiguration {
    /// TLS to the broker: which CAs to trust, and optionally a client certificate to present.
    ///
    /// The broker's certificate is always verified against the configured CAs (there is deliberately no switch to
    /// turn chain verification off), and its subject alternative names must match ``MosquittoConfiguration/host``
    /// unless ``insecure`` is set. All values are file paths, read by OpenSSL when the client connects; none of them
    /// is secret, so they appear in descriptions and logs.
    ///
    /// Only unencrypted private keys are supported: libmosquitto would ask for a key password through a callback
    /// (or OpenSSL would prompt on the terminal), which a daemon cannot answer. The client installs a callback that
    /// supplies no password, and ``MosquittoConfiguration/validate()`` rejects a PEM key marked as encrypted; protect
    /// the key with file permissions instead.
    public struct TLS: Sendable, Hashable {
        /// The oldest TLS protocol version the client accepts.
        ///
        /// This is libmosquitto's `tls_version` option: `tlsv1.2` allows TLS 1.2 and 1.3 (the same as leaving the
        /// version unset), `tlsv1.3` allows TLS 1.3 only. Older versions are not offered: OpenSSL 3 refuses them at
        /// its default security level anyway.
        public struct Version: Sendable, Hashable, CustomStringConvertible {
            private enum Base: Sendable, Hashable {
                case tlsv1_2
                case tlsv1_3
            }

            private let base: Base

            private init(_ base: Base) { self.base = base }

            /// TLS 1.2 or newer (libmosquitto's default).
            public static let tlsv1_2 = Version(.tlsv1_2)
            /// TLS 1.3 only.
            public static let tlsv1_3 = Version(.tlsv1_3)

            /// Parses the spellings used in configuration files and command lines: `"tlsv1.2"`, `"1.2"`,
            /// `"tlsv1.3"`, `"1.3"` (case-insensitive); anything else is `nil` so that the caller can name the
            /// setting in its error.
            /// - Parameter string: The text to parse.
            public init?(string: String) {
                switch string.lowercased() {
                case "tlsv1.2", "tls1.2", "1.2": self = .tlsv1_2
                case "tlsv1.3", "tls1.3", "1.3": self = .tlsv1_3
                default: return nil
                }
            }

            /// libmosquitto's spelling, `"tlsv1.2"` or `"tlsv1.3"` (what `mosquitto_tls_opts_set` takes).
            public var description: String {
                switch base {
                case .tlsv1_2: "tlsv1.2"
                case .tlsv1_3: "tlsv1.3"
                }
            }
        }

        /// A PEM file of CA certificates to trust for the broker's certificate. Default `nil`. At least one of this
        /// and ``caDirectory`` is required: without a trust anchor the broker could not be authenticated.
        public var caFile: String?
        /// A directory of PEM CA certificates, named by subject hash as `openssl rehash` (`c_rehash`) leaves them.
        /// Default `nil`. Used in addition to ``caFile`` when both are set.
        public var caDirectory: String?
        /// A PEM client certificate (optionally followed by its intermediates) for brokers that require one
        /// (`require_certificate true`). Default `nil`. Must be set together with ``keyFile``.
        public var certificateFile: String?
        /// The unencrypted PEM private key of ``certificateFile``. Default `nil`. Must be set together with
        /// ``certificateFile``. The file is read by OpenSSL, never by this module's logging.
        public var keyFile: String?
        /// Skip checking that the broker's certificate names ``MosquittoConfiguration/host``. Default `false`.
        ///
        /// - Important: Dangerous. The chain is still verified, but any certificate the trusted CAs ever issued,
        ///   for any host, is then accepted, so anyone holding one (another broker, any service behind a shared or
        ///   public CA) can impersonate the broker, read every command and forge every reply. Use it only to
        ///   diagnose a certificate whose names are wrong, never in production.
        public var insecure: Bool
        /// The oldest TLS version to accept. Default `nil`: libmosquitto's default, TLS 1.2 or newer.
        public var version: Version?
        /// An OpenSSL cipher list for TLS 1.2 (e.g. `"ECDHE-ECDSA-AES128-GCM-SHA256"`), as `openssl ciphers`
        /// understands it. Default `nil`: OpenSSL's default list. It does not affect TLS 1.3 cipher suites.
        public var ciphers: String?

        /// Creates a TLS setting; every argument has the default documented on its property.
        /// - Parameters:
        ///   - caFile: PEM CA bundle; default `nil`.
        ///   - caDirectory: Hashed CA directory; default `nil`.
        ///   - certificateFile: PEM client certificate; default `nil`.
        ///   - keyFile: Unencrypted PEM key of the client certificate; default `nil`.
        ///   - insecure: Skip the host name check (dangerous); default `false`.
        ///   - version: Oldest TLS version; default `nil` (TLS 1.2 or newer).
        ///   - ciphers: OpenSSL cipher list for TLS 1.2; default `nil`.
        public init(
            caFile: String? = nil,
            caDirectory: String? = nil,
            certificateFile: String? = nil,
            keyFile: String? = nil,
            insecure: Bool = false,
            version: Version? = nil,
            ciphers: String? = nil
        ) {
            self.caFile = caFile
            self.caDirectory = caDirectory
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.insecure = insecure
            self.version = version
            self.ciphers = ciphers
        }

        /// Checks what libmosquitto would otherwise reject with a bare `MOSQ_ERR_INVAL`, or OpenSSL only when the
        /// client connects: that the files exist and are readable, that certificate and key come together, and that
        /// there is something to trust.
        /// - Throws: ``MosquittoError`` with code ``MosquittoError/Code/invalidConfiguration`` naming the setting
        ///   (`tls.caFile`, `tls.keyFile`...).
        public func validate() throws(MosquittoError) {
            if caFile == nil && caDirectory == nil {
                throw .invalidConfiguration(
                    "tls needs tls.caFile or tls.caDirectory to verify the broker's certificate"
                )
            }
            switch (certificateFile, keyFile) {
            case (.some, nil):
                throw .invalidConfiguration("tls.certificateFile is set but tls.keyFile is not; set both or neither")
            case (nil, .some):
                throw .invalidConfiguration("tls.keyFile is set but tls.certificateFile is not; set both or neither")
            default:
                break
            }
            if let caFile { try Self.checkReadableFile(caFile, setting: "tls.caFile") }
            if let caDirectory { try Self.checkReadableDirectory(caDirectory, setting: "tls.caDirectory") }
            if let certificateFile { try Self.checkReadableFile(certificateFile, setting: "tls.certificateFile") }
            if let keyFile {
                try Self.checkReadableFile(keyFile, setting: "tls.keyFile")
                if Self.isEncryptedPEMKey(atPath: keyFile) {
                    throw .invalidConfiguration(
                        "tls.keyFile \"\(keyFile)\" is encrypted; only unencrypted keys are supported "
                            + "(decrypt it with `openssl pkey -in <key> -out <plain key>` and protect it by file permissions)"
                    )
                }
            }
            if let ciphers, ciphers.isEmpty || ciphers.utf8.contains(0) {
                throw .invalidConfiguration("tls.ciphers must be a non-empty OpenSSL cipher list without NUL")
            }
        }

        private static func checkPath(_ path: String, setting: String) throws(MosquittoError) {
            if path.isEmpty || path.utf8.contains(0) {
                throw .invalidConfiguration("\(setting) must be a non-empty path without NUL")
            }
        }

        private static func checkReadableFile(_ path: String, setting: String) throws(MosquittoError) {
            try checkReadable(path, directory: false, setting: setting)
        }

        private static func checkReadableDirectory(_ path: String, setting: String) throws(MosquittoError) {
            try checkReadable(path, directory: true, setting: setting)
        }

        /// Checks that `path` exists, is a directory exactly when `directory` is set, and is readable.
        private static func checkReadable(_ path: String, directory: Bool, setting: String) throws(MosquittoError) {
            try checkPath(path, setting: setting)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw .invalidConfiguration("\(setting) \"\(path)\" does not exist")
            }
            if isDirectory.boolValue != directory {
                throw .invalidConfiguration(
                    directory
                        ? "\(setting) \"\(path)\" is not a directory"
                        : "\(setting) \"\(path)\" is a directory, not a file"
                )
            }
            if !FileManager.default.isReadableFile(atPath: path) {
                throw .invalidConfiguration("\(setting) \"\(path)\" is not readable by this process")
            }
        }

        /// Whether the file is a PEM key that needs a password: PKCS#8 `ENCRYPTED PRIVATE KEY`, or a traditional
        /// key with a `Proc-Type: 4,ENCRYPTED` header. Reads at most the first 64 KiB (keys are a few KiB).
        private static func isEncryptedPEMKey(atPath path: String) -> Bool {
            guard let handle = FileHandle(forReadingAtPath: path) else { return false }
            defer { try? handle.close() }
            guard let data = try? handle.read(upToCount: 65_536) else { return false }
            let text = String(decoding: data, as: UTF8.self)
            return text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED")
        }
    }
}

extension MosquittoConfiguration.TLS: CustomStringConvertible {
    /// A log-safe summary with the file paths (none of them is secret), e.g.
    /// `TLS(caFile: /etc/ca.pem, caDirectory: -, certificateFile: -, keyFile: -, insecure: false, version: -, ciphers: -)`.
    public var description: String {
        "TLS(caFile: \(caFile ?? "-"), caDirectory: \(caDirectory ?? "-"), "
            + "certificateFile: \(certificateFile ?? "-"), keyFile: \(keyFile ?? "-"), insecure: \(insecure), "
            + "version: \(version.map(\.description) ?? "-"), ciphers: \(ciphers ?? "-"))"
    }
}

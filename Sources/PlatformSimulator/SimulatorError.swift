// SPDX-License-Identifier: Apache-2.0

/// Why the simulator could not be set up or started.
///
/// The simulator's answers to RPC calls are not errors of this type: they are platform answers (gateway or IoT
/// error codes) written to the HTTP response. This type is for the operator: a bad setting, a fixture that does
/// not load, a port that cannot be bound. Equality compares the code only, so tests can match the kind of
/// failure without matching its wording.
public struct SimulatorError: Error, Hashable, CustomStringConvertible, Sendable {
    private enum Code: String, Sendable, Hashable {
        case invalidConfiguration
        case fixtureUnreadable
        case invalidFixture
        case startupFailed
    }

    private let code: Code
    /// What went wrong, naming the setting, file or fixture entry.
    public let message: String
    /// Where the error was raised (`#fileID`).
    public let file: String
    /// Where the error was raised (`#line`).
    public let line: Int

    private init(_ code: Code, _ message: String, file: String, line: Int) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    /// A setting has a value the simulator cannot work with.
    public static func invalidConfiguration(_ message: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.invalidConfiguration, message, file: file, line: line)
    }

    /// The fixture file could not be read or is not JSON of the documented shape.
    public static func fixtureUnreadable(_ message: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.fixtureUnreadable, message, file: file, line: line)
    }

    /// The fixture was read but is inconsistent (an unknown product, a duplicate ID, a bad status…).
    public static func invalidFixture(_ message: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.invalidFixture, message, file: file, line: line)
    }

    /// The HTTP server stopped before it reported a listening port (port in use, bad host).
    public static func startupFailed(_ message: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(.startupFailed, message, file: file, line: line)
    }

    /// Matches on the code only.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// A bounded, stable label (the code), fit for a metric dimension.
    public var shortDescription: String { code.rawValue }

    public var description: String { "SimulatorError.\(code.rawValue): \(message)" }
}

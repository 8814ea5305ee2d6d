// SPDX-License-Identifier: Apache-2.0

/// An AccessKey secret that cannot leak through string interpolation.
///
/// Its `description`, `debugDescription` and reflection all print a fixed mask, so logging a configuration,
/// an error or a request by accident never shows the secret. Only the signer (and, inside this package, the
/// simulator) reads the value.
public struct AccessKeySecret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The secret itself; `package` so that nothing outside this package can read it.
    package let value: String

    /// Wraps a secret. Leading and trailing whitespace (a newline at the end of a secret file) is removed.
    public init(_ value: String) {
        var text = Substring(value)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        self.value = String(text)
    }

    /// Whether the secret is empty (a configuration error worth reporting by name).
    public var isEmpty: Bool { value.isEmpty }

    public var description: String { "AccessKeySecret(redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

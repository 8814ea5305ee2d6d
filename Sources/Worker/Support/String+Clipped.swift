// SPDX-License-Identifier: Apache-2.0

extension String {
    /// This text cut to at most `limit` Unicode scalars, with `…` appended when it was cut.
    ///
    /// Long texts that come from outside (a requester's fields, a reply topic, a configuration key) are cut before
    /// they are echoed in a reply, a dead letter or an error, so that one message cannot make another huge.
    package func clipped(toScalars limit: Int) -> String {
        unicodeScalars.count <= limit
            ? self : String(String.UnicodeScalarView(unicodeScalars.prefix(limit))) + "…"
    }
}

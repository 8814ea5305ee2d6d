// SPDX-License-Identifier: Apache-2.0
public import PlatformSignature

/// Which common parameters a call carries: the request shape of one platform's reference client.
///
/// The platform verifies exactly the parameters it receives, so a parameter that one platform requires and the
/// other has never heard of is a compatibility risk either way. A profile names a whole, known-good shape
/// instead of a handful of independent switches, and whatever a profile leaves out is neither sent nor signed.
///
/// | profile | common parameters besides `Action`, `AccessKeyId`, `SignatureMethod`, `SignatureNonce`, `Timestamp` | reference method |
/// |---|---|---|
/// | ``aliyun`` | `Format=JSON`, `Version=2018-01-20`, `SignatureVersion=1.0`, `RegionId` when configured | POST (parameters in the query) |
/// | ``tuya`` | none: the seed's sample request | GET |
///
/// The method is not part of the profile's parameters: both platforms accept GET and POST for this API
/// (its metadata says `POST|GET`), and ``PlatformAPIConfiguration/method`` chooses.
/// ``referenceMethod`` only records what the profile's reference client sends.
public struct PlatformProfile: Sendable, Hashable, CustomStringConvertible {
    private enum Kind: String, Sendable, Hashable {
        case aliyun
        case tuya
    }

    private let kind: Kind
    private init(_ kind: Kind) { self.kind = kind }

    /// Alibaba Cloud IoT Platform as the official SDKs call it (`aliyun-python-sdk-core`, the Tea SDK):
    /// `Format=JSON`, `Version=2018-01-20`, `SignatureVersion=1.0`, and `RegionId` when one is configured.
    ///
    /// `Format` is sent because the platform's own default is XML; `Version` and `RegionId` are required by
    /// Alibaba's common-parameter table (reference/platform-api.md §3).
    public static let aliyun = PlatformProfile(.aliyun)

    /// Tuya's copy of the API, shaped like the seed document's sample request: only `Action`, `AccessKeyId`,
    /// `SignatureMethod`, `SignatureNonce`, `Timestamp` and the operation's parameters.
    ///
    /// `RegionId` is not part of Tuya's common parameters and is never sent with this profile.
    public static let tuya = PlatformProfile(.tuya)

    /// Every profile, for help texts.
    public static let allProfiles: [PlatformProfile] = [.aliyun, .tuya]

    /// Parses `aliyun` or `tuya` (case-insensitive).
    public init?(name: String) {
        guard let kind = Kind(rawValue: name.lowercased()) else { return nil }
        self.init(kind)
    }

    /// `aliyun` or `tuya`.
    public var name: String { kind.rawValue }

    public var description: String { name }

    /// The method the profile's reference client sends: POST for ``aliyun`` (the official SDKs), GET for
    /// ``tuya`` (the seed document's sample).
    public var referenceMethod: RPCHTTPMethod {
        switch kind {
        case .aliyun: .post
        case .tuya: .get
        }
    }

    /// Whether a configured `RegionId` is sent (``aliyun`` only).
    public var sendsRegionId: Bool { kind == .aliyun }

    /// The common parameters this profile adds beyond `AccessKeyId`, `SignatureMethod`, `SignatureNonce` and
    /// `Timestamp` (which every profile sends), in no particular order (signing sorts them).
    ///
    /// - Parameter regionId: the configured region; sent by ``aliyun`` when non-empty, never by ``tuya``.
    public func additionalCommonParameters(regionId: String?) -> [(name: String, value: String)] {
        switch kind {
        case .aliyun:
            var parameters = [
                (name: "Format", value: "JSON"),
                (name: "Version", value: "2018-01-20"),
                (name: "SignatureVersion", value: "1.0"),
            ]
            if let regionId, !regionId.isEmpty { parameters.append((name: "RegionId", value: regionId)) }
            return parameters
        case .tuya:
            return []
        }
    }
}

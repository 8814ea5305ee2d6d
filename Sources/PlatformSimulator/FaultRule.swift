// SPDX-License-Identifier: Apache-2.0
public import Foundation

/// A scripted failure for the next RPC calls: an error answer, a delay (fixed or random), a body that trickles
/// out, or a connection closed without answer; for every call, the next few, or a share of them.
///
/// A client's retry, backoff and timeout logic can only be tested against a platform that fails on purpose.
/// Rules apply to authenticated calls that passed the quota (the faults a real platform shows after it accepted
/// a request), first rule first; each call consumes at most one rule. All fields are optional so the JSON form
/// posted to `POST /_sim/faults` (or given to `ota-platform-sim --fault`) stays short:
/// `{"httpStatus": 503, "count": 2}`, `{"errorCode": "Throttling.User", "probability": 0.1}`.
///
/// Besides ``action``, a rule can match by the call's content (``deviceName``, ``productKey``, ``firmwareId``),
/// so a test's outcome follows from what a command carries and not from the order in which a worker happens to
/// send its calls: `{"deviceName": "dev-000007", "errorCode": "iot.system.IllegalRequest"}` fails every call
/// naming that device, however the worker batches it.
public struct FaultRule: Sendable, Codable, Equatable {
    /// The HTTP status of the error answer. Default: derived from ``errorCode`` (`InternalError` 500,
    /// `ServiceUnavailable` 503, `Throttling*` 400, other gateway codes 400, `iot.*` codes 200), or 500 when
    /// only other fields are set and an error is wanted. An answer with status 200 is an IoT business error
    /// (`Success: false`); any other status is a gateway error.
    public var httpStatus: Int?
    /// The error code. Default: derived from ``httpStatus`` (500 `InternalError`, 503 `ServiceUnavailable`,
    /// 429 `Throttling`, 200 `iot.system.SystemException`, others `SimulatedFault`).
    public var errorCode: String?
    /// The error message. Default: a fixed text per code.
    public var errorMessage: String?
    /// How many calls the rule applies to. Default `nil`: every call until the faults are cleared.
    public var count: Int?
    /// Sent as header `x-acs-retry-after` (milliseconds) with the error answer. Default `nil`: no header.
    public var retryAfterMilliseconds: Int?
    /// A delay before the answer (or before the connection is closed). Default `nil`: none.
    public var latencyMilliseconds: Int?
    /// Close the connection instead of answering. Default `nil` (`false`).
    public var dropConnection: Bool?
    /// Run the operation first, then fail: the platform acted but the client hears an error or nothing, the
    /// ambiguous case a retrying client must survive. Default `nil` (`false`): the call fails before the operation.
    public var afterOperation: Bool?
    /// Only calls with this `Action` match. Default `nil`: every action.
    public var action: String?
    /// Only `CancelOTATaskByDevice` calls whose `DeviceName.N` parameters include this name match. Default `nil`:
    /// any call.
    ///
    /// The name is looked up in the call's parameters as sent, so a call the operation would refuse (a gap in the
    /// numbering, more than 200 names) still matches when it carries the name.
    public var deviceName: String?
    /// Only calls whose `ProductKey` parameter is exactly this match (a call without one does not). Default `nil`:
    /// any call.
    public var productKey: String?
    /// Only calls whose `FirmwareId` parameter is exactly this match (a call without one does not). Default `nil`:
    /// any call.
    public var firmwareId: String?
    /// The share of matching calls the rule hits, in `(0, 1]`. Default `nil`: every matching call (as `1`).
    ///
    /// A call matches when it satisfies every matcher that is set (``action``, ``deviceName``, ``productKey``,
    /// ``firmwareId``). Each matching call draws once; a call the rule misses goes on to the next rule (and is answered normally
    /// when no rule hits it). ``count`` counts only the calls hit. The draws come from the simulator's random
    /// generator, which ``SimulatorConfiguration/randomSeed`` makes reproducible.
    public var probability: Double?
    /// With ``latencyMilliseconds`` (or 0 when that is absent) the bounds of a random delay: each hit waits a
    /// uniformly drawn whole number of milliseconds in `[latencyMilliseconds, maxLatencyMilliseconds]`.
    /// Default `nil`: the delay is ``latencyMilliseconds`` exactly.
    public var maxLatencyMilliseconds: Int?
    /// Writes the answer's status and headers at once and then its body in ten pieces spread over this many
    /// milliseconds (a slow or congested platform). Default `nil`: the body is written in one piece.
    ///
    /// Alone, the rule slows down the real answer; with an error it slows down the error answer.
    public var slowBodyMilliseconds: Int?

    /// Creates a rule; every argument defaults to `nil` (see each property).
    public init(
        httpStatus: Int? = nil,
        errorCode: String? = nil,
        errorMessage: String? = nil,
        count: Int? = nil,
        retryAfterMilliseconds: Int? = nil,
        latencyMilliseconds: Int? = nil,
        dropConnection: Bool? = nil,
        afterOperation: Bool? = nil,
        action: String? = nil,
        probability: Double? = nil,
        maxLatencyMilliseconds: Int? = nil,
        slowBodyMilliseconds: Int? = nil,
        deviceName: String? = nil,
        productKey: String? = nil,
        firmwareId: String? = nil
    ) {
        self.httpStatus = httpStatus
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.count = count
        self.retryAfterMilliseconds = retryAfterMilliseconds
        self.latencyMilliseconds = latencyMilliseconds
        self.dropConnection = dropConnection
        self.afterOperation = afterOperation
        self.action = action
        self.probability = probability
        self.maxLatencyMilliseconds = maxLatencyMilliseconds
        self.slowBodyMilliseconds = slowBodyMilliseconds
        self.deviceName = deviceName
        self.productKey = productKey
        self.firmwareId = firmwareId
    }

    /// Checks the fields that cannot be applied.
    ///
    /// - Returns: a description of the first problem, or `nil` when the rule is usable.
    public func problem() -> String? {
        if let httpStatus, !(200...599).contains(httpStatus) { return "httpStatus must be 200...599" }
        if let count, count < 1 { return "count must be >= 1 (omit it for 'until cleared')" }
        if let retryAfterMilliseconds, retryAfterMilliseconds < 0 { return "retryAfterMilliseconds must be >= 0" }
        if let latencyMilliseconds, latencyMilliseconds < 0 { return "latencyMilliseconds must be >= 0" }
        if let errorCode, errorCode.isEmpty { return "errorCode must not be empty" }
        if let deviceName, deviceName.isEmpty { return "deviceName must not be empty (omit it for any call)" }
        if let productKey, productKey.isEmpty { return "productKey must not be empty (omit it for any call)" }
        if let firmwareId, firmwareId.isEmpty { return "firmwareId must not be empty (omit it for any call)" }
        if deviceName != nil, let action, action != Self.cancelAction {
            return "deviceName only matches \(Self.cancelAction) calls; it cannot be combined with action \(action)"
        }
        if let probability, !(probability > 0 && probability <= 1) {
            return "probability must be in (0, 1] (omit it for every call)"
        }
        if let maxLatencyMilliseconds {
            if maxLatencyMilliseconds < (latencyMilliseconds ?? 0) {
                return "maxLatencyMilliseconds must be >= latencyMilliseconds (or >= 0 without it)"
            }
        }
        if let slowBodyMilliseconds, slowBodyMilliseconds < 0 { return "slowBodyMilliseconds must be >= 0" }
        if slowBodyMilliseconds != nil, dropConnection == true {
            return "slowBodyMilliseconds needs a body: it cannot be combined with dropConnection"
        }
        if dropConnection != true, httpStatus == nil, errorCode == nil, errorMessage == nil,
            retryAfterMilliseconds == nil, latencyMilliseconds == nil, maxLatencyMilliseconds == nil,
            slowBodyMilliseconds == nil
        {
            return "the rule does nothing: set httpStatus, errorCode, latencyMilliseconds, maxLatencyMilliseconds, "
                + "slowBodyMilliseconds or dropConnection"
        }
        return nil
    }

    /// The delay this rule adds to one call: ``latencyMilliseconds``, or a draw between it and
    /// ``maxLatencyMilliseconds``.
    func latency(using generator: inout some RandomNumberGenerator) -> Duration {
        let low = max(0, latencyMilliseconds ?? 0)
        guard let high = maxLatencyMilliseconds, high > low else { return .milliseconds(low) }
        return .milliseconds(Int.random(in: low...high, using: &generator))
    }

    /// The only action whose calls carry `DeviceName.N`.
    static let cancelAction = "CancelOTATaskByDevice"

    /// Whether a call is one this rule applies to, before ``probability`` is drawn: every matcher that is set
    /// (``action``, ``deviceName``, ``productKey``, ``firmwareId``) must agree with the call.
    ///
    /// - Parameters:
    ///   - action: the call's `Action`.
    ///   - parameters: the call's decoded parameters (query and form), as sent.
    /// - Returns: `true` when the call matches.
    func matches(action: String, parameters: [String: String]) -> Bool {
        if let expected = self.action, expected != action { return false }
        if let productKey, parameters["ProductKey"] != productKey { return false }
        if let firmwareId, parameters["FirmwareId"] != firmwareId { return false }
        if let deviceName {
            guard action == Self.cancelAction else { return false }
            // Only the values need comparing: most parameters are not DeviceName.N, and a value equal to the name
            // under another key (a device named like the ProductKey) must not match.
            return parameters.contains { key, value in value == deviceName && key.hasPrefix("DeviceName.") }
        }
        return true
    }

    /// Whether the rule answers with an error (as opposed to only delaying the real answer).
    var answersWithError: Bool {
        dropConnection != true
            && (httpStatus != nil || errorCode != nil || errorMessage != nil
                || retryAfterMilliseconds != nil)
    }

    /// The JSON keys a rule may have: a misspelt key (`"probabilty"`) would otherwise be ignored silently and
    /// the rule would apply to every call.
    static let knownKeys: Set<String> = [
        "httpStatus", "errorCode", "errorMessage", "count", "retryAfterMilliseconds", "latencyMilliseconds",
        "dropConnection", "afterOperation", "action", "probability", "maxLatencyMilliseconds",
        "slowBodyMilliseconds", "deviceName", "productKey", "firmwareId",
    ]

    /// Decodes a rule from JSON, refusing unknown keys and rules that cannot apply (``problem()``).
    ///
    /// - Throws: ``SimulatorError`` with code `invalidConfiguration` saying what is wrong.
    public static func decode(json data: Data) throws(SimulatorError) -> FaultRule {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .invalidConfiguration("a fault rule is a JSON object, e.g. {\"httpStatus\":503,\"count\":2}")
        }
        let unknown = Set(object.keys).subtracting(knownKeys).sorted()
        guard unknown.isEmpty else {
            throw .invalidConfiguration(
                "unknown key(s) \(unknown.joined(separator: ", ")); a fault rule has "
                    + knownKeys.sorted().joined(separator: ", ")
            )
        }
        let rule: FaultRule
        do {
            rule = try JSONDecoder().decode(FaultRule.self, from: data)
        } catch {
            throw .invalidConfiguration("not a fault rule: \(error)")
        }
        if let problem = rule.problem() { throw .invalidConfiguration(problem) }
        return rule
    }
}

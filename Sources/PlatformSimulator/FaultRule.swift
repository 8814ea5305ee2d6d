// SPDX-License-Identifier: Apache-2.0

/// A scripted failure for the next RPC calls: an error answer, a delay, or a connection closed without answer.
///
/// A client's retry, backoff and timeout logic can only be tested against a platform that fails on purpose.
/// Rules apply to authenticated calls that passed the quota (the faults a real platform shows after it accepted
/// a request), first rule first; each call consumes at most one rule. All fields are optional so the JSON form
/// posted to `POST /_sim/faults` stays short: `{"httpStatus": 503, "count": 2}`.
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
        action: String? = nil
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
        if dropConnection != true, httpStatus == nil, errorCode == nil, errorMessage == nil,
            retryAfterMilliseconds == nil, latencyMilliseconds == nil
        {
            return "the rule does nothing: set httpStatus, errorCode, latencyMilliseconds or dropConnection"
        }
        return nil
    }

    /// Whether the rule answers with an error (as opposed to only delaying the real answer).
    var answersWithError: Bool {
        dropConnection != true
            && (httpStatus != nil || errorCode != nil || errorMessage != nil
                || retryAfterMilliseconds != nil)
    }
}

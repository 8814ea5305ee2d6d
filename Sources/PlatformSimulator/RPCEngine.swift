// SPDX-License-Identifier: Apache-2.0
import Foundation
import Logging
import PlatformSignature

/// The RPC endpoint's logic, free of HTTP: parameters in, an answer (or a dropped connection) out.
///
/// Checks run in the platform's order (see `docs/simulator.md`): parameter syntax, missing common parameters,
/// AccessKeyId, signature method, timestamp format and skew, signature, then Format/Version/Action, and under the
/// state's lock the nonce, the quota, the fault rules and the operation. Everything stateless happens before
/// the lock, so the critical section is a few dictionary operations.
struct RPCEngine: Sendable {
    let accounts: [String: AccessKeySecret]
    let style: ResponseStyle
    let cancelWithoutTask: SimulatorConfiguration.CancelWithoutTask
    let qps: Int
    let latency: Duration
    let maximumLatency: Duration?
    let clockOffsetSeconds: Double
    let toleranceSeconds: Double
    let iotInstanceId: String?
    let state: SimulatorState
    let logger: Logger

    init(configuration: SimulatorConfiguration, state: SimulatorState, logger: Logger) {
        accounts = configuration.accounts
        style = configuration.responseStyle
        cancelWithoutTask = configuration.cancelWithoutTask
        qps = configuration.qps
        latency = configuration.latency
        maximumLatency = configuration.maximumLatency
        clockOffsetSeconds = Self.seconds(configuration.clockOffset)
        toleranceSeconds = Self.seconds(configuration.timestampTolerance)
        iotInstanceId = configuration.iotInstanceId
        self.state = state
        self.logger = logger
    }

    /// The common parameters that must be present (and non-empty), in the order they are checked.
    static let requiredCommonParameters = [
        "AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "SignatureMethod", "Action",
    ]

    /// Handles one request.
    ///
    /// - Parameters:
    ///   - method: the HTTP method.
    ///   - query: the raw query string (without `?`), if any.
    ///   - form: the raw `application/x-www-form-urlencoded` body of a POST, if any.
    ///   - hostId: the `HostId` of gateway errors (the request's authority).
    ///   - now: the real time; the simulator's clock is this plus the configured clock offset.
    func handle(
        method: String,
        query: Substring?,
        form: Substring?,
        hostId: String,
        now realNow: Date = Date()
    ) -> RPCOutcome {
        let now = clockOffsetSeconds == 0 ? realNow : realNow.addingTimeInterval(clockOffsetSeconds)
        let requestId = UUID().uuidString
        guard let rpcMethod = RPCHTTPMethod(rawValue: method) else {
            return reject(.unsupportedHTTPMethod, requestId: requestId, hostId: hostId, authentication: false)
        }
        var parameters: [String: String] = [:]
        parameters.reserveCapacity(24)
        if let problem = Self.parse(query, into: &parameters) ?? Self.parse(form, into: &parameters) {
            return reject(problem, requestId: requestId, hostId: hostId, authentication: false)
        }

        // Authentication, in the platform's order.
        for name in Self.requiredCommonParameters where parameters[name]?.isEmpty ?? true {
            return reject(.missingParameter(name), requestId: requestId, hostId: hostId, authentication: true)
        }
        let accessKeyId = parameters["AccessKeyId"]!
        guard let secret = accounts[accessKeyId] else {
            return reject(.accessKeyNotFound, requestId: requestId, hostId: hostId, authentication: true)
        }
        guard parameters["SignatureMethod"] == "HMAC-SHA1" else {
            return reject(.invalidSignatureMethod, requestId: requestId, hostId: hostId, authentication: true)
        }
        guard let timestamp = RPCTimestamp.date(from: parameters["Timestamp"]!) else {
            return reject(.timestampFormat, requestId: requestId, hostId: hostId, authentication: true)
        }
        let nowSeconds = now.timeIntervalSince1970
        let timestampSeconds = timestamp.timeIntervalSince1970
        guard abs(nowSeconds - timestampSeconds) <= toleranceSeconds else {
            return reject(.timestampExpired, requestId: requestId, hostId: hostId, authentication: true)
        }
        let stringToSign = RPCCanonicalization.stringToSign(method: rpcMethod, parameters: parameters)
        let expected = RPCSigner.signature(stringToSign: stringToSign, accessKeySecret: secret)
        guard parameters["Signature"] == expected else {
            return reject(
                .signatureDoesNotMatch(serverStringToSign: stringToSign),
                requestId: requestId,
                hostId: hostId,
                authentication: true
            )
        }

        // What is asked for.
        if let format = parameters["Format"], format.lowercased() != "json" {
            return reject(.unsupportedFormat(format), requestId: requestId, hostId: hostId, authentication: false)
        }
        if let version = parameters["Version"], version != "2018-01-20", version != "2022-01-01" {
            return reject(.invalidVersion, requestId: requestId, hostId: hostId, authentication: false)
        }
        let action = parameters["Action"]!
        guard let operation = SimulatedOperation(rawValue: action) else {
            return reject(.apiNotFound, requestId: requestId, hostId: hostId, authentication: false)
        }
        let prepared = operation.prepare(parameters)

        // Stateful part: one critical section.
        let nonce = NonceMemory.fingerprint(accessKeyId: accessKeyId, nonce: parameters["SignatureNonce"]!)
        let nonceExpiry = max(nowSeconds, timestampSeconds) + toleranceSeconds
        let clockNow = ContinuousClock.now
        let call = AdmittedCall(
            accessKeyId: accessKeyId,
            action: action,
            parameters: parameters,
            operation: operation,
            prepared: prepared,
            nonce: nonce,
            nonceExpiry: nonceExpiry,
            nowSeconds: nowSeconds,
            clockNow: clockNow,
            now: now,
            requestId: requestId,
            hostId: hostId
        )
        let outcome = state.storage.withLock { storage -> RPCOutcome in
            storage.stats.requests += 1
            let outcome = admitAndPerform(call, storage: &storage)
            if case .answer(let answer, _) = outcome, answer.errorCode != nil { storage.stats.errorAnswers += 1 }
            return outcome
        }
        if case .answer(let answer, _) = outcome, let code = answer.errorCode {
            logger.debug(
                "RPC call refused",
                metadata: ["sim.request.id": "\(requestId)", "sim.action": "\(action)", "sim.code": "\(code)"]
            )
        }
        return outcome
    }

    /// What the critical section needs to know about an authenticated call.
    private struct AdmittedCall {
        var accessKeyId: String
        var action: String
        /// The decoded parameters, for the fault rules that match by content.
        var parameters: [String: String]
        var operation: SimulatedOperation
        var prepared: Result<PreparedCall, OperationError>
        var nonce: UInt64
        var nonceExpiry: Double
        var nowSeconds: Double
        var clockNow: ContinuousClock.Instant
        var now: Date
        var requestId: String
        var hostId: String
    }

    /// Nonce, quota, fault rules and the operation; runs inside the state's lock.
    private func admitAndPerform(_ call: AdmittedCall, storage: inout SimulatorState.Storage) -> RPCOutcome {
        let requestId = call.requestId
        let hostId = call.hostId
        let baseDelay = baseDelay(&storage.random)
        guard storage.nonces.insert(call.nonce, expiresAt: call.nonceExpiry, now: call.nowSeconds) else {
            storage.stats.authFailures += 1
            return .answer(AnswerBuilder.gateway(.nonceUsed, requestId: requestId, hostId: hostId), delay: baseDelay)
        }
        if qps > 0,
            !storage.buckets.take(
                .init(accessKeyId: call.accessKeyId, action: call.action),
                rate: qps,
                now: call.clockNow
            )
        {
            storage.stats.throttled += 1
            return .answer(
                AnswerBuilder.gateway(.throttlingUser, requestId: requestId, hostId: hostId),
                delay: baseDelay
            )
        }
        let fault = Self.takeFault(action: call.action, parameters: call.parameters, from: &storage)
        let faultLatency = fault.map { $0.latency(using: &storage.random) } ?? .zero
        let delay = baseDelay + faultLatency
        let failing = fault.map { $0.dropConnection == true || $0.answersWithError } ?? false
        if let fault, failing, fault.afterOperation != true {
            return faultOutcome(fault, requestId: requestId, hostId: hostId, delay: delay, storage: &storage)
        }
        var answer = perform(
            call.operation,
            call.prepared,
            requestId: requestId,
            hostId: hostId,
            now: call.now,
            storage: &storage
        )
        if let fault, failing {
            return faultOutcome(fault, requestId: requestId, hostId: hostId, delay: delay, storage: &storage)
        }
        answer.slowBody = fault?.slowBodyMilliseconds.map { .milliseconds($0) }
        return .answer(answer, delay: delay)
    }

    /// The configured delay of one answer: ``latency``, or a draw up to ``maximumLatency``.
    private func baseDelay(_ random: inout SimulatorRandom) -> Duration {
        guard let maximumLatency, maximumLatency > latency else { return latency }
        let low = Self.milliseconds(latency)
        let high = Self.milliseconds(maximumLatency)
        return .milliseconds(Int64.random(in: low...high, using: &random))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    // MARK: Parameters

    /// Decodes `name=value&…` into `parameters`.
    ///
    /// - Returns: the error to answer when a component is not valid percent-encoded UTF-8 or a name repeats
    ///   (within the query, within the body, or across both: a repeated name has no defined meaning in a signed
    ///   request).
    static func parse(_ text: Substring?, into parameters: inout [String: String]) -> GatewayError? {
        guard let text, !text.isEmpty else { return nil }
        // Split on bytes, not Characters: `&` and `=` are ASCII, and grapheme breaking was the handler's
        // single largest cost.
        for pair in text.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let rawName = Substring(equals.map { pair[..<$0] } ?? pair)
            let rawValue = equals.map { Substring(pair[pair.index(after: $0)...]) } ?? ""
            guard let name = RPCCanonicalization.percentDecode(rawName), !name.isEmpty,
                let value = RPCCanonicalization.percentDecode(rawValue)
            else {
                return .invalidParameter("The parameter \"\(rawName)\" is not valid percent-encoded UTF-8.")
            }
            guard parameters.updateValue(value, forKey: name) == nil else {
                return .invalidParameter("The parameter \"\(name)\" appears more than once.")
            }
        }
        return nil
    }

    // MARK: Answers

    /// Counts a request whose body could not be read (too large, or the connection broke off).
    func recordUnprocessedRequest() {
        state.storage.withLock { storage in
            storage.stats.requests += 1
            storage.stats.errorAnswers += 1
        }
    }

    private func reject(_ error: GatewayError, requestId: String, hostId: String, authentication: Bool) -> RPCOutcome {
        let delay = state.storage.withLock { storage in
            storage.stats.requests += 1
            storage.stats.errorAnswers += 1
            if authentication { storage.stats.authFailures += 1 }
            return baseDelay(&storage.random)
        }
        logger.debug("RPC request refused", metadata: ["sim.request.id": "\(requestId)", "sim.code": "\(error.code)"])
        return .answer(AnswerBuilder.gateway(error, requestId: requestId, hostId: hostId), delay: delay)
    }

    /// Consumes the first rule that matches the call (``FaultRule/matches(action:parameters:)``) and hits (a rule
    /// with a ``FaultRule/probability`` draws).
    private static func takeFault(
        action: String,
        parameters: [String: String],
        from storage: inout SimulatorState.Storage
    ) -> FaultRule? {
        guard !storage.faults.isEmpty else { return nil }
        var found: Int?
        for index in storage.faults.indices {
            let rule = storage.faults[index]
            guard rule.matches(action: action, parameters: parameters) else { continue }
            if let probability = rule.probability, probability < 1,
                Double.random(in: 0..<1, using: &storage.random) >= probability
            {
                continue
            }
            found = index
            break
        }
        guard let index = found else { return nil }
        let rule = storage.faults[index]
        if let count = rule.count {
            if count <= 1 {
                storage.faults.remove(at: index)
            } else {
                storage.faults[index].count = count - 1
            }
        }
        storage.stats.faultsInjected += 1
        return rule
    }

    private func faultOutcome(
        _ rule: FaultRule,
        requestId: String,
        hostId: String,
        delay: Duration,
        storage: inout SimulatorState.Storage
    ) -> RPCOutcome {
        if rule.dropConnection == true {
            storage.stats.connectionsDropped += 1
            return .drop(delay: delay)
        }
        let code = rule.errorCode ?? Self.defaultFaultCode(status: rule.httpStatus ?? 500)
        let status = rule.httpStatus ?? Self.defaultFaultStatus(code: code)
        let message = rule.errorMessage ?? Self.defaultFaultMessage(code: code)
        var answer =
            status == 200
            ? AnswerBuilder.business(BusinessError(code: code, message: message), style: style, requestId: requestId)
            : AnswerBuilder.gateway(
                GatewayError(status: status, code: code, message: message),
                requestId: requestId,
                hostId: hostId
            )
        answer.retryAfterMilliseconds = rule.retryAfterMilliseconds
        answer.slowBody = rule.slowBodyMilliseconds.map { .milliseconds($0) }
        return .answer(answer, delay: delay)
    }

    static func defaultFaultCode(status: Int) -> String {
        switch status {
        case 200: "iot.system.SystemException"
        case 429: "Throttling"
        case 503: "ServiceUnavailable"
        case 500: "InternalError"
        default: "SimulatedFault"
        }
    }

    static func defaultFaultStatus(code: String) -> Int {
        switch code {
        case "InternalError": 500
        case "ServiceUnavailable": 503
        case _ where code.hasPrefix("iot.") || code.hasPrefix("Iot."): 200
        default: 400
        }
    }

    static func defaultFaultMessage(code: String) -> String {
        switch code {
        case "InternalError": "The request processing has failed due to some unknown error, exception or failure."
        case "ServiceUnavailable": "The request has failed due to a temporary failure of the server."
        case _ where code.hasPrefix("Throttling"): "Request was denied due to flow control."
        case "iot.system.SystemException": "A system exception occurred. Try again later."
        default: "Simulated fault \(code)."
        }
    }

    // MARK: Operations

    private func perform(
        _ operation: SimulatedOperation,
        _ prepared: Result<PreparedCall, OperationError>,
        requestId: String,
        hostId: String,
        now: Date,
        storage: inout SimulatorState.Storage
    ) -> RPCAnswer {
        let result: Result<RPCAnswer, OperationError>
        switch prepared {
        case .success(.cancel(let call)):
            storage.stats.cancelCalls += 1
            storage.stats.cancelBatchSizes.record(call.deviceNames.count)
            result = checkInstance(call.iotInstanceId).flatMap {
                Operations.cancel(
                    call,
                    style: style,
                    withoutTask: cancelWithoutTask,
                    requestId: requestId,
                    now: now,
                    storage: &storage
                )
            }
        case .success(.listTasks(let call)):
            storage.stats.readCalls += 1
            result = checkInstance(call.iotInstanceId).flatMap {
                Operations.listTasks(call, style: style, requestId: requestId, catalog: storage.catalog)
            }
        case .success(.queryJob(let call)):
            storage.stats.readCalls += 1
            result = checkInstance(call.iotInstanceId).flatMap {
                Operations.queryJob(call, style: style, requestId: requestId, catalog: storage.catalog)
            }
        case .success(.unfinishedTasks(let call)):
            storage.stats.readCalls += 1
            result = checkInstance(call.iotInstanceId).flatMap {
                Operations.unfinishedTasks(call, style: style, requestId: requestId, catalog: storage.catalog)
            }
        case .failure(let error):
            // A parameter error still reached the operation; count it where the operation would have been.
            switch operation {
            case .cancelOTATaskByDevice: storage.stats.cancelCalls += 1
            case .listOTATaskByJob, .queryOTAJob, .listOTAUnfinishedTaskByDevice: storage.stats.readCalls += 1
            }
            result = .failure(error)
        }
        switch result {
        case .success(let answer):
            return answer
        case .failure(let error):
            return AnswerBuilder.error(error, style: style, requestId: requestId, hostId: hostId)
        }
    }

    /// The instance rule: a configured instance ID must be sent exactly; without one, none may be sent.
    private func checkInstance(_ given: String?) -> Result<Void, OperationError> {
        switch (iotInstanceId, given) {
        case (nil, nil): .success(())
        case (let expected?, let given?) where expected == given: .success(())
        case (_, let given): .failure(.business(.instanceNotFound(given)))
        }
    }
}

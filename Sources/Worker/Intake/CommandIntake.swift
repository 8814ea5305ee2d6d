// SPDX-License-Identifier: Apache-2.0
public import Foundation
import JSONSchema
public import Mosquitto

/// Turns a received MQTT message into a decision: size check, JSON parse, reply route, schema validation,
/// correlation and deadline (DESIGN §1 and §2).
///
/// - Important: ``decide(_:)`` runs on the MQTT loop thread before the message is acknowledged, so it does
///   bounded CPU work only: no I/O, no locks shared with slow code, no waiting.
public struct CommandIntake: Sendable {
    public let configuration: CancelWorkerConfiguration
    public let schema: CommandSchema
    private let now: @Sendable () -> Date

    /// - Parameters:
    ///   - now: the clock for `receivedAt` and deadline checks (tests inject one).
    public init(
        configuration: CancelWorkerConfiguration,
        schema: CommandSchema,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.configuration = configuration
        self.schema = schema
        self.now = now
    }

    /// Decides what to do with a message. Never throws and never traps, whatever the payload.
    public func decide(_ message: MQTTMessage) -> IntakeDecision {
        let receivedAt = now()
        let correlationData = message.properties.correlationData
        let responseTopic = message.properties.responseTopic.flatMap { $0.isEmpty ? nil : $0 }
        let correlationFromData = correlationData.flatMap { String(validating: $0, as: UTF8.self) }

        // 1. Messages the worker will not parse at all.
        var earlyProblem: CancelReply.Problem?
        if message.retain {
            earlyProblem = .init(
                code: "RetainedCommand",
                instanceLocation: "",
                keywordLocation: "#worker/retain",
                message: "retained messages are never executed (a stale command would run again on every "
                    + "subscription): publish commands without the retain flag"
            )
        } else if message.payload.count > configuration.maxPayloadBytes {
            earlyProblem = .init(
                code: "PayloadTooLarge",
                instanceLocation: "",
                keywordLocation: "#worker/maxPayloadBytes",
                message: "the payload has \(message.payload.count) bytes, more than the limit of "
                    + "\(configuration.maxPayloadBytes)"
            )
        }
        let payload: JSONValue
        if let earlyProblem {
            return unparsed(
                message,
                problem: earlyProblem,
                responseTopic: responseTopic,
                correlationData: correlationData,
                correlationId: correlationFromData,
                receivedAt: receivedAt
            )
        }
        do {
            payload = try JSONParser.parse(message.payload)
        } catch {
            let problem = CancelReply.Problem(
                code: "InvalidJSON",
                instanceLocation: "",
                keywordLocation: "#worker/json",
                message: "the payload is not valid JSON: \(error)"
            )
            return unparsed(
                message,
                problem: problem,
                responseTopic: responseTopic,
                correlationData: correlationData,
                correlationId: correlationFromData,
                receivedAt: receivedAt
            )
        }

        // 2. The reply route, checked against the allow-list.
        var problems = [CancelReply.Problem]()
        let payloadReplyTo = payload["replyTo"]?.stringValue
        var route: ReplyRoute
        if let responseTopic {
            route = ReplyRoute(topic: responseTopic, source: .responseTopic, correlationData: correlationData)
        } else if let payloadReplyTo {
            route = ReplyRoute(topic: payloadReplyTo, source: .replyTo, correlationData: correlationData)
        } else {
            route = ReplyRoute(
                topic: configuration.defaultReplyTopic,
                source: .defaultTopic,
                correlationData: correlationData
            )
        }
        if let problem = routeProblem(route) {
            problems.append(problem)
            route = ReplyRoute(
                topic: configuration.defaultReplyTopic,
                source: .defaultTopic,
                correlationData: correlationData
            )
        }

        // 3. The schema.
        for error in schema.validator.validate(payload) {
            problems.append(
                .init(
                    code: "SchemaViolation",
                    instanceLocation: error.instanceLocation,
                    keywordLocation: error.keywordLocation,
                    absoluteKeywordLocation: error.absoluteKeywordLocation,
                    message: error.message
                )
            )
        }

        // 4. Correlation: every reply must be attributable.
        let payloadCorrelationId = payload["correlationId"]?.stringValue
        let correlationId = payloadCorrelationId ?? correlationFromData
        if payloadCorrelationId == nil && correlationData == nil {
            problems.append(
                .init(
                    code: "MissingCorrelation",
                    instanceLocation: "",
                    keywordLocation: "#worker/correlation",
                    message: "correlationId is required when the message carries no MQTT 5 Correlation Data"
                )
            )
        }

        if !problems.isEmpty {
            return .answer(
                rejection(problems, correlationId: correlationId, receivedAt: receivedAt, payload: payload),
                route
            )
        }
        guard let command = CancelCommand(validated: payload) else {
            // The schema accepted what the decoder cannot read: the schema file and the decoder disagree.
            let problem = CancelReply.Problem(
                code: "Unsupported",
                instanceLocation: "",
                keywordLocation: "#worker/decode",
                message: "the command passed the schema but could not be read; the schema file does not match "
                    + "this worker version"
            )
            return .answer(
                rejection([problem], correlationId: correlationId, receivedAt: receivedAt, payload: payload),
                route
            )
        }

        // 5. The deadline: the earliest of the command's, the message's own expiry and the configured default.
        var deadline = command.deadline
        if let expiry = message.properties.messageExpiryInterval {
            let expiresAt = receivedAt.addingTimeInterval(TimeInterval(expiry))
            deadline = min(deadline ?? expiresAt, expiresAt)
        }
        if let defaultDeadline = configuration.defaultDeadline {
            let bound = receivedAt.addingTimeInterval(defaultDeadline.seconds)
            deadline = min(deadline ?? bound, bound)
        }
        if let deadline, deadline <= receivedAt {
            var reply = CancelReply(
                correlationId: correlationId,
                status: .expired,
                receivedAt: receivedAt,
                completedAt: now()
            )
            reply.echo(command)
            reply.deadline = deadline
            return .answer(reply, route)
        }
        return .execute(
            AcceptedCommand(
                command: command,
                correlationId: correlationId,
                route: route,
                receivedAt: receivedAt,
                deadline: deadline,
                payload: message.payload,
                digest: Canonical.digest(of: payload)
            )
        )
    }

    /// Why a reply may not go to this route, or `nil` when it may.
    private func routeProblem(_ route: ReplyRoute) -> CancelReply.Problem? {
        let location = route.source == .replyTo ? "/replyTo" : ""
        let origin = route.source == .responseTopic ? "the MQTT 5 Response Topic" : "replyTo"
        if let problem = MQTTTopic.problemWithTopicName(route.topic) {
            return .init(
                code: "InvalidReplyTopic",
                instanceLocation: location,
                keywordLocation: "#worker/replyTopic",
                message: "\(origin) '\(Self.clip(route.topic))' cannot be published to: \(problem)"
            )
        }
        guard route.topic != configuration.defaultReplyTopic,
            !configuration.replyTopicAllowList.contains(where: { MQTTTopic.matches(topic: route.topic, filter: $0) })
        else { return nil }
        return .init(
            code: "ReplyTopicNotAllowed",
            instanceLocation: location,
            keywordLocation: "#worker/replyTopicAllowList",
            message: "\(origin) '\(Self.clip(route.topic))' is not allowed: reply topics must match "
                + configuration.replyTopicAllowList.joined(separator: ", ")
        )
    }

    /// A message whose payload was not parsed: rejected on its Response Topic, or dead-lettered.
    private func unparsed(
        _ message: MQTTMessage,
        problem: CancelReply.Problem,
        responseTopic: String?,
        correlationData: [UInt8]?,
        correlationId: String?,
        receivedAt: Date
    ) -> IntakeDecision {
        if let responseTopic {
            var route = ReplyRoute(topic: responseTopic, source: .responseTopic, correlationData: correlationData)
            var problems = [problem]
            if let routeProblem = routeProblem(route) {
                problems.append(routeProblem)
                route = ReplyRoute(
                    topic: configuration.defaultReplyTopic,
                    source: .defaultTopic,
                    correlationData: correlationData
                )
            }
            return .answer(
                rejection(problems, correlationId: correlationId, receivedAt: receivedAt, payload: nil),
                route
            )
        }
        return .deadLetter(
            DeadLetter(message: message, code: problem.code, reason: problem.message, receivedAt: receivedAt)
                .outgoing(topic: configuration.deadLetterTopic)
        )
    }

    /// A `rejected` reply with its problems, echoing what the payload identifies (when it was parsed).
    private func rejection(
        _ problems: [CancelReply.Problem],
        correlationId: String?,
        receivedAt: Date,
        payload: JSONValue?
    ) -> CancelReply {
        var reply = CancelReply(
            correlationId: correlationId,
            status: .rejected,
            receivedAt: receivedAt,
            completedAt: now()
        )
        reply.errors = problems
        if let payload { echoIdentifiers(of: payload, into: &reply) }
        return reply
    }

    /// Copies the identifiers a rejected payload carries (strings only, clipped) so the requester can tell
    /// which command the reply is about.
    private func echoIdentifiers(of payload: JSONValue, into reply: inout CancelReply) {
        reply.productKey = payload["productKey"]?.stringValue.map(Self.clip)
        reply.firmwareId = payload["firmwareId"]?.stringValue.map(Self.clip)
        reply.jobId = payload["jobId"]?.stringValue.map(Self.clip)
        reply.iotInstanceId = payload["iotInstanceId"]?.stringValue.map(Self.clip)
        reply.reason = payload["reason"]?.stringValue.map(Self.clip)
        reply.requestedBy = payload["requestedBy"]?.stringValue.map(Self.clip)
        if payload["dryRun"]?.boolValue == true { reply.dryRun = true }
    }

    /// Long attacker-controlled strings are cut (to 256 characters) before they are echoed.
    static func clip(_ text: String) -> String { text.clipped(toScalars: 256) }
}

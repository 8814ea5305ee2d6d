// SPDX-License-Identifier: Apache-2.0
import Foundation
import JSONSchema
import TestSupport
import Testing

/// The repository's schemas, as the hygiene tests (issue 8) give them to the worker.
let hygieneSchemas = WorkerStack.repositoryRoot + "/schemas"

/// Sends one command with `mosquitto_rr` (MQTT 5, correlation id in the payload) and returns the reply.
func requestOverMQTT(port: Int, correlationId: String, extra: String = "") async throws -> JSONValue {
    let payload =
        #"{"productKey":"demoProduct","firmwareId":"demoFirmware","deviceNames":["dev-000001"],"correlationId":"#
        + JSONValue.string(correlationId).serialized() + extra + "}"
    let result = try await runProcess(
        "mosquitto_rr",
        [
            "-h", "127.0.0.1", "-p", "\(port)", "-V", "5", "-q", "1", "-t", "ota/cancel/request", "-e",
            "ota/cancel/reply/\(UUID().uuidString)", "-W", "30", "-m", payload,
        ],
        timeout: .seconds(40)
    )
    try #require(result.exitCode == 0, "mosquitto_rr: \(result)")
    return try JSONParser.parse(result.stdout)
}

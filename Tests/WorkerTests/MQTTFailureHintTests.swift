// SPDX-License-Identifier: Apache-2.0
import Mosquitto
import Testing
import Worker

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 10: a failed MQTT connection names the broker and the setting most likely at fault.
@Suite("MQTT failure hints")
struct MQTTFailureHintTests {
    static func describe(_ error: MosquittoError, tls: Bool = false) -> String {
        MQTTFailureHint.describe(error, host: "mqtt.example", port: 8883, tls: tls)
    }

    @Test("a host name that does not resolve: the host, the port and --broker-host")
    func lookup() {
        for code in [MosquittoError.ResultCode.eai, .lookup] {
            let text = Self.describe(MosquittoError(.library(code)))
            #expect(text.hasPrefix("cannot resolve the MQTT broker's host name 'mqtt.example' (port 8883)"), "\(text)")
            #expect(text.contains("check --broker-host (OTA_CANCEL_BROKER_HOST)"), "\(text)")
        }
    }

    @Test("TLS: the address and the TLS settings to check")
    func tls() {
        let text = Self.describe(
            MosquittoError(.library(.tls), detail: "TLS with mqtt.example:8883: certificate verify failed"),
            tls: true
        )
        #expect(text.hasPrefix("TLS with the MQTT broker at mqtt.example:8883 failed"), "\(text)")
        #expect(text.contains("certificate verify failed"), "\(text)")
        for setting in ["--broker-tls-ca-file", "--broker-host 'mqtt.example'", "--broker-tls-version"] {
            #expect(text.contains(setting), "\(text)")
        }
    }

    @Test(
        "refusals name what to check",
        arguments: [
            (UInt8(0x05), "--broker-username"), (0x04, "--broker-password-file"), (0x86, "--broker-username"),
            (0x87, "access rules"), (0x85, "--client-id"), (0x02, "--client-id"), (0x84, "--mqtt-version"),
            (0x01, "--mqtt-version"), (0x8A, "banned"), (0x88, "later attempt"), (0x99, "broker's log"),
        ]
    )
    func refusals(code: UInt8, hint: String) {
        let text = Self.describe(MosquittoError(.connectionRefused(code), detail: "CONNACK refused the connection"))
        #expect(text.hasPrefix("the MQTT broker at mqtt.example:8883 refused the connection: "), "\(text)")
        #expect(text.contains(hint), "\(text)")
    }

    @Test("nothing listening, and anything else: the address and libmosquitto's words")
    func others() {
        // MOSQ_ERR_ERRNO's text is strerror(errno) when the error is made, as after a refused TCP connect.
        errno = ECONNREFUSED
        let error = MosquittoError(.library(.errno), detail: "network")
        let refused = MQTTFailureHint.describe(error, host: "mqtt.example", port: 1883, tls: true)
        #expect(refused.hasPrefix("nothing accepts connections at mqtt.example:1883"), "\(refused)")
        #expect(refused.contains("--broker-port (with TLS the usual port is 8883)"), "\(refused)")
        #expect(!Self.describe(error, tls: true).contains("usual port"), "no hint when the port is the usual one")
        let timeout = Self.describe(MosquittoError(.library(.timeout)))
        #expect(timeout.hasPrefix("no answer from the MQTT broker at mqtt.example:8883"), "\(timeout)")
        let other = Self.describe(MosquittoError(.library(.protocol)))
        #expect(other.hasPrefix("the MQTT connection to mqtt.example:8883 failed: "), "\(other)")
    }
}

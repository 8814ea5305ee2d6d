// SPDX-License-Identifier: Apache-2.0
public import Mosquitto

/// A failed MQTT connection said for an operator: which broker (host and port), what libmosquitto reported, and
/// the setting most likely at fault.
///
/// libmosquitto's own words say what failed but not where, and not what to change: `Lookup error.` for a host
/// name that does not resolve, `Connection refused` for a port nothing listens on, OpenSSL's reason for a TLS
/// handshake. Pure, so every case is unit-tested.
public enum MQTTFailureHint {
    /// `<what happened> at <host>:<port>: <libmosquitto's message>; <what to check>`.
    public static func describe(_ error: MosquittoError, host: String, port: Int, tls: Bool) -> String {
        let broker = "\(host):\(port)"
        let code = error.resultCode
        if code == .eai || code == .lookup {
            return "cannot resolve the MQTT broker's host name '\(host)' (port \(port)): \(error.message); "
                + "check --broker-host (OTA_CANCEL_BROKER_HOST) and this host's DNS"
        }
        if code == .tls || code == .tlsHandshake || error.message.contains("TLS with") {
            return "TLS with the MQTT broker at \(broker) failed: \(error.message); check --broker-tls-ca-file or "
                + "--broker-tls-ca-dir (the CA that signed the broker's certificate), that the certificate names "
                + "--broker-host '\(host)', --broker-tls-version, and the client certificate "
                + "(--broker-tls-cert-file) if the broker requires one"
        }
        if let refusal = error.code.connackCode {
            return "the MQTT broker at \(broker) refused the connection: \(error.message); "
                + refusalHint(refusal)
        }
        if error.message.contains("Connection refused") {
            return "nothing accepts connections at \(broker) (\(error.message)): check that the broker runs, "
                + "and --broker-host and --broker-port"
                + (tls && port != 8883 ? " (with TLS the usual port is 8883)" : "")
        }
        if code == .timeout || error.message.contains("timed out") {
            return "no answer from the MQTT broker at \(broker) (\(error.message)): check --broker-host, "
                + "--broker-port and that a firewall lets the worker through"
        }
        return "the MQTT connection to \(broker) failed: \(error.message)"
    }

    /// What to check for a CONNACK refusal (MQTT 3.1.1 return codes 1-5, MQTT 5 reason codes from 0x80).
    static func refusalHint(_ code: UInt8) -> String {
        switch code {
        case 0x04, 0x05, 0x86, 0x87, 0x8C:
            "check --broker-username and --broker-password-file (or OTA_CANCEL_BROKER_PASSWORD), and the broker's "
                + "access rules for this user"
        case 0x02, 0x85:
            "check --client-id (the broker does not accept it)"
        case 0x01, 0x84:
            "check --mqtt-version (5 or 3.1.1, as the broker speaks)"
        case 0x8A:
            "the broker has banned this client: ask its operator"
        case 0x03, 0x88, 0x89, 0x97, 0x9F:
            "the broker is unavailable or busy: it may accept a later attempt"
        default:
            "see the broker's log for why"
        }
    }
}

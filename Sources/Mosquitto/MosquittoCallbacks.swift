// SPDX-License-Identifier: Apache-2.0
//
// The C callbacks. They are plain global functions (not closures, and not in a main.swift, so nothing infers
// @MainActor isolation onto them), reach the Swift object only through libmosquitto's `obj` pointer, copy what
// libmosquitto owns before returning, and do no work beyond handing over to MosquittoCore.
// All of them run on the network-loop thread, with libmosquitto's callback mutex held.
import CMosquitto
import Logging

private func core(_ obj: UnsafeMutableRawPointer?) -> MosquittoCore? {
    guard let obj else { return nil }
    return Unmanaged<MosquittoCore>.fromOpaque(obj).takeUnretainedValue()
}

func mosquittoOnConnect(
    _: OpaquePointer?,
    _ obj: UnsafeMutableRawPointer?,
    _ rc: Int32,
    _ flags: Int32,
    _ properties: OpaquePointer?
) {
    // The CONNACK's Maximum Packet Size (MQTT 5): the largest packet the broker accepts from us.
    var maximumPacketSize: UInt32 = 0
    let announced =
        properties.flatMap {
            mosquitto_property_read_int32($0, Int32(MQTT_PROP_MAXIMUM_PACKET_SIZE.rawValue), &maximumPacketSize, false)
        } != nil
    core(obj)?.handleConnect(returnCode: rc, flags: flags, maximumPacketSize: announced ? maximumPacketSize : nil)
}

func mosquittoOnDisconnect(_: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ rc: Int32, _: OpaquePointer?) {
    core(obj)?.handleDisconnect(returnCode: rc)
}

func mosquittoOnPublish(
    _: OpaquePointer?,
    _ obj: UnsafeMutableRawPointer?,
    _ mid: Int32,
    _ reasonCode: Int32,
    _: OpaquePointer?
) {
    core(obj)?.handlePublishAcknowledged(mid: mid, reasonCode: reasonCode)
}

func mosquittoOnSubscribe(
    _: OpaquePointer?,
    _ obj: UnsafeMutableRawPointer?,
    _ mid: Int32,
    _ count: Int32,
    _ granted: UnsafePointer<Int32>?,
    _: OpaquePointer?
) {
    guard let core = core(obj) else { return }
    var codes: [UInt8] = []
    if let granted, count > 0 {
        codes = UnsafeBufferPointer(start: granted, count: Int(count)).map { UInt8(truncatingIfNeeded: $0) }
    }
    core.handleSubscribeAcknowledged(mid: mid, granted: codes)
}

func mosquittoOnMessage(
    _: OpaquePointer?,
    _ obj: UnsafeMutableRawPointer?,
    _ message: UnsafePointer<mosquitto_message>?,
    _ properties: OpaquePointer?
) {
    guard let core = core(obj), let raw = message?.pointee else { return }
    // Copy everything: libmosquitto frees the message and its properties as soon as we return.
    let topic = raw.topic.map { String(cString: $0) } ?? ""
    var payload: [UInt8] = []
    if let bytes = raw.payload, raw.payloadlen > 0 {
        payload = Array(UnsafeRawBufferPointer(start: bytes, count: Int(raw.payloadlen)))
    }
    let copied = MQTTMessage(
        topic: topic,
        payload: payload,
        qos: MQTTQoS(rawValue: UInt8(truncatingIfNeeded: raw.qos)) ?? .atMostOnce,
        retain: raw.retain,
        properties: MQTTProperties(copying: properties),
        messageID: raw.mid
    )
    core.handleMessage(copied)
}

func mosquittoOnLog(_: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ level: Int32, _ text: UnsafePointer<CChar>?) {
    guard let core = core(obj), let text else { return }
    // With TLS this runs for every packet's debug line; only error lines and trace logging need the text.
    guard level == MOSQ_LOG_ERR || core.logger.logLevel <= .trace else { return }
    core.handleLog(level: level, text: String(cString: text))
}

/// The key-password callback given to `mosquitto_tls_set`: supplies no password (returns length 0), so an
/// encrypted key fails to load instead of OpenSSL prompting on the terminal. Only unencrypted keys are supported.
func mosquittoNoKeyPassword(
    _: UnsafeMutablePointer<CChar>?,
    _: Int32,
    _: Int32,
    _: UnsafeMutableRawPointer?
) -> Int32 {
    0
}

/// Installs every callback on a fresh handle; the log callback only when `withLog` is set (with it libmosquitto
/// formats a line for every packet).
func installCallbacks(on mosq: OpaquePointer, withLog: Bool) {
    mosquitto_connect_v5_callback_set(mosq, mosquittoOnConnect)
    mosquitto_disconnect_v5_callback_set(mosq, mosquittoOnDisconnect)
    mosquitto_publish_v5_callback_set(mosq, mosquittoOnPublish)
    mosquitto_subscribe_v5_callback_set(mosq, mosquittoOnSubscribe)
    mosquitto_message_v5_callback_set(mosq, mosquittoOnMessage)
    if withLog {
        mosquitto_log_callback_set(mosq, mosquittoOnLog)
    }
}

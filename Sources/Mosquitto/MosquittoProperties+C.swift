// SPDX-License-Identifier: Apache-2.0
//
// Conversions between MQTTProperties and libmosquitto property lists. The only rules that matter here:
// every value `mosquitto_property_read_*` hands out is a fresh malloc'd copy we must free(), and a list passed
// to `mosquitto_publish_v5` must be built with `mosquitto_property_add_*` (a `copy_all` list would only send its
// first property, see the libmosquitto reference §3).
import CMosquitto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

private func propertyID(_ property: mqtt5_property) -> Int32 { Int32(property.rawValue) }

extension MQTTProperties {
    /// Copies the properties this module knows out of a borrowed libmosquitto list (NULL → empty).
    init(copying list: OpaquePointer?) {
        self.init()
        guard let list else { return }

        var string: UnsafeMutablePointer<CChar>?
        if mosquitto_property_read_string(list, propertyID(MQTT_PROP_RESPONSE_TOPIC), &string, false) != nil,
            let value = string
        {
            responseTopic = String(cString: value)
        }
        free(string)
        string = nil

        if mosquitto_property_read_string(list, propertyID(MQTT_PROP_CONTENT_TYPE), &string, false) != nil,
            let value = string
        {
            contentType = String(cString: value)
        }
        free(string)
        string = nil

        var binary: UnsafeMutableRawPointer?
        var binaryLength: UInt16 = 0
        if mosquitto_property_read_binary(
            list,
            propertyID(MQTT_PROP_CORRELATION_DATA),
            &binary,
            &binaryLength,
            false
        ) != nil {
            if let binary, binaryLength > 0 {
                correlationData = Array(UnsafeRawBufferPointer(start: binary, count: Int(binaryLength)))
            } else {
                correlationData = []
            }
        }
        free(binary)

        var byte: UInt8 = 0
        if mosquitto_property_read_byte(list, propertyID(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR), &byte, false) != nil {
            payloadFormatIndicator = byte
        }

        var int32: UInt32 = 0
        if mosquitto_property_read_int32(list, propertyID(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL), &int32, false) != nil {
            messageExpiryInterval = int32
        }

        var name: UnsafeMutablePointer<CChar>?
        var value: UnsafeMutablePointer<CChar>?
        var cursor = mosquitto_property_read_string_pair(
            list,
            propertyID(MQTT_PROP_USER_PROPERTY),
            &name,
            &value,
            false
        )
        while cursor != nil {
            if let name, let value {
                userProperties.append(MQTTUserProperty(name: String(cString: name), value: String(cString: value)))
            }
            free(name)
            free(value)
            name = nil
            value = nil
            cursor = mosquitto_property_read_string_pair(
                cursor,
                propertyID(MQTT_PROP_USER_PROPERTY),
                &name,
                &value,
                true
            )
        }
    }

    /// Builds a fresh libmosquitto list with `mosquitto_property_add_*`, runs `body` with it and frees it.
    ///
    /// `body` gets `nil` when there is nothing to send (an empty list must be NULL for libmosquitto).
    /// - Throws: ``MosquittoError`` if a value cannot be encoded (e.g. correlation data over 65 535 bytes).
    func withPropertyList<R>(_ body: (OpaquePointer?) throws(MosquittoError) -> R) throws(MosquittoError) -> R {
        if isEmpty { return try body(nil) }
        var list: OpaquePointer?
        defer { mosquitto_property_free_all(&list) }

        func check(_ rc: Int32, _ what: String) throws(MosquittoError) {
            if rc != 0 { throw MosquittoError(result: rc, detail: "encoding property \(what)") }
        }

        if let responseTopic {
            try check(
                mosquitto_property_add_string(&list, propertyID(MQTT_PROP_RESPONSE_TOPIC), responseTopic),
                "response topic"
            )
        }
        if let correlationData {
            guard correlationData.count <= Int(UInt16.max) else {
                throw .invalidArgument("correlation data is \(correlationData.count) bytes, at most 65535 allowed")
            }
            let rc = correlationData.withUnsafeBytes { bytes in
                // A zero-length value still needs a valid pointer.
                withUnsafeBytes(of: UInt8(0)) { empty in
                    mosquitto_property_add_binary(
                        &list,
                        propertyID(MQTT_PROP_CORRELATION_DATA),
                        bytes.baseAddress ?? empty.baseAddress,
                        UInt16(bytes.count)
                    )
                }
            }
            try check(rc, "correlation data")
        }
        if let contentType {
            try check(
                mosquitto_property_add_string(&list, propertyID(MQTT_PROP_CONTENT_TYPE), contentType),
                "content type"
            )
        }
        if let payloadFormatIndicator {
            try check(
                mosquitto_property_add_byte(
                    &list,
                    propertyID(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR),
                    payloadFormatIndicator
                ),
                "payload format indicator"
            )
        }
        if let messageExpiryInterval {
            try check(
                mosquitto_property_add_int32(
                    &list,
                    propertyID(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL),
                    messageExpiryInterval
                ),
                "message expiry interval"
            )
        }
        for property in userProperties {
            try check(
                mosquitto_property_add_string_pair(
                    &list,
                    propertyID(MQTT_PROP_USER_PROPERTY),
                    property.name,
                    property.value
                ),
                "user property"
            )
        }
        return try body(list)
    }
}

/// Runs `body` (a connect call) with the CONNECT property list: MQTT 5 Session Expiry Interval.
/// - Returns: `body`'s result, or the libmosquitto error code if the list could not be built (out of memory).
func withConnectProperties(
    _ configuration: MosquittoConfiguration,
    _ body: (OpaquePointer?) -> Int32
) -> Int32 {
    guard configuration.protocolVersion == .v5 else { return body(nil) }
    var list: OpaquePointer?
    defer { mosquitto_property_free_all(&list) }
    let rc = mosquitto_property_add_int32(
        &list,
        propertyID(MQTT_PROP_SESSION_EXPIRY_INTERVAL),
        configuration.sessionExpiryInterval
    )
    // Connecting without the property would silently end the session at every disconnect: fail instead.
    if rc != 0 { return rc }
    return body(list)
}

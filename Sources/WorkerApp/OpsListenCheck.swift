// SPDX-License-Identifier: Apache-2.0
public import Worker

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether the operations server can listen where it is told to, checked before anything connects.
///
/// The server itself binds when the service group starts, concurrently with the MQTT connection, so a busy port
/// used to fail only after the worker had connected, in NIO's words (`bind(descriptor:ptr:bytes:)`). This binds
/// a socket to the same address, with `SO_REUSEADDR` as NIO's server does, and closes it: a port held by another
/// listener is refused at start (and by `check-config`) with the address, the settings and what to do. Another
/// process taking the port in the instant between this check and the server's bind is still reported, in the
/// same words, by ``OpsServer``.
public enum OpsListenCheck {
    /// Binds and releases a socket on `host:port`.
    ///
    /// - Throws: ``WorkerError/invalidConfiguration(_:file:line:)`` with ``message(host:port:errorNumber:)``, or
    ///   naming `--ops-host` when the host does not resolve.
    public static func check(host: String, port: Int) throws(WorkerError) {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        #if canImport(Glibc) || canImport(Musl)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &found)
        guard resolved == 0, let address = found else {
            throw .invalidConfiguration(
                "cannot listen on \(host):\(port): the host '\(host)' does not resolve "
                    + "(\(String(cString: gai_strerror(resolved)))); check --ops-host (OTA_CANCEL_OPS_HOST): "
                    + "127.0.0.1, 0.0.0.0 or an address of this host"
            )
        }
        defer { freeaddrinfo(found) }
        let descriptor = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard descriptor >= 0 else {
            throw .invalidConfiguration(message(host: host, port: port, errorNumber: errno))
        }
        defer { close(descriptor) }
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            throw .invalidConfiguration(message(host: host, port: port, errorNumber: errno))
        }
    }

    /// Why the operations server cannot listen on `host:port`, naming the settings and what to do.
    public static func message(host: String, port: Int, errorNumber: Int32) -> String {
        let reason = String(cString: strerror(errorNumber)).lowercased()
        let prefix = "cannot listen on \(host):\(port)"
        switch errorNumber {
        case EADDRINUSE:
            return "\(prefix) (--ops-port / OTA_CANCEL_OPS_PORT): \(reason); pick another port or stop the process "
                + "using it"
        case EACCES, EPERM:
            return "\(prefix) (--ops-port / OTA_CANCEL_OPS_PORT): \(reason); ports below 1024 need privileges: "
                + "pick a port above 1023"
        case EADDRNOTAVAIL:
            return "\(prefix) (--ops-host / OTA_CANCEL_OPS_HOST): \(reason); the address is not one of this host's: "
                + "use 127.0.0.1, 0.0.0.0 or an address of this host"
        default:
            return "\(prefix) (--ops-host / --ops-port): \(reason)"
        }
    }
}

import Foundation
import HopGateTestSupport

@testable import HopGateDTLS

/// A plain blocking UDP socket on 127.0.0.1, for tests that must send exactly the bytes they choose.
final class UDPSocket: @unchecked Sendable {
    // @unchecked: the descriptor never changes, and the kernel serialises sends and receives on it.
    private let descriptor: Int32

    /// Binds an ephemeral port and connects to `port`, so `send` needs no address and `receive` hears only it.
    init(connectingTo port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// Sends equal-size datagrams (the last may be shorter) in one write that the kernel cuts apart (UDP GSO), as
    /// a HopGate client does. Returns whether the kernel took it.
    @discardableResult
    func sendSegmented(_ datagrams: [[UInt8]]) -> Bool {
        let payload = datagrams.flatMap { $0 }
        return SegmentationOffloadProbe.sendSegmented(payload, segmentSize: datagrams[0].count, on: descriptor)
            == payload.count
    }

    /// The next datagram, or nil after `timeoutMilliseconds` of silence. The wait runs off the shared test threads.
    func receive(timeoutMilliseconds: Int32 = 2000) async -> [UInt8]? {
        (try? await offload { self.blockingReceive(timeoutMilliseconds: timeoutMilliseconds) }) ?? nil
    }

    private func blockingReceive(timeoutMilliseconds: Int32) -> [UInt8]? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        return count >= 0 ? Array(buffer[0..<count]) : nil
    }
}

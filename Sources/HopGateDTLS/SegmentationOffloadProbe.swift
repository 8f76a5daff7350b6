import Glibc
import NIOCore

/// Whether UDP segmentation offload (GSO) works on the route to a peer. Linux refuses a segmented write with EIO
/// when the outgoing device cannot checksum for it, or the route goes through IPsec, and NIO closes a datagram
/// channel whose write fails that way. So before a channel uses it, a throwaway socket sends one write of two
/// 1-byte segments toward the peer, and the kernel's answer decides. The peer gets two 1-byte datagrams from a
/// port it does not know, which a DTLS server drops.
enum SegmentationOffloadProbe {
    private static let udpSegment: CInt = 103  // UDP_SEGMENT, linux/udp.h
    private static let solUDP: CInt = 17  // SOL_UDP

    static func works(toward peer: SocketAddress) -> Bool {
        guard System.supportsUDPSegmentationOffload else { return false }
        let family: CInt
        switch peer {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        case .unixDomainSocket: return false
        }
        let fd = socket(
            family,
            CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue),
            0
        )
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let connected = peer.withSockAddr { address, length in connect(fd, address, socklen_t(length)) }
        guard connected == 0 else { return false }
        return sendSegmented([0, 0], segmentSize: 1, on: fd) == 2
    }

    /// Sends `payload` on the connected socket `fd` as one write the kernel cuts every `segmentSize` bytes
    /// (UDP_SEGMENT). Returns what sendmsg does: the bytes taken, or -1.
    static func sendSegmented(_ payload: [UInt8], segmentSize: Int, on fd: CInt) -> Int {
        var payload = payload
        let headerSize = MemoryLayout<cmsghdr>.size
        var control = [UInt8](repeating: 0, count: headerSize + 8)  // CMSG_SPACE(2): the header and 2 bytes, padded
        control.withUnsafeMutableBytes { bytes in
            let header = bytes.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
            header.pointee.cmsg_len = headerSize + 2  // CMSG_LEN(2)
            header.pointee.cmsg_level = solUDP
            header.pointee.cmsg_type = udpSegment
            bytes.storeBytes(of: UInt16(segmentSize), toByteOffset: headerSize, as: UInt16.self)
        }
        return payload.withUnsafeMutableBytes { payloadBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: payloadBytes.baseAddress, iov_len: payloadBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    return sendmsg(fd, &message, 0)
                }
            }
        }
    }
}

import NIOCore

/// How large the datagrams toward one peer may be.
///
/// 1200 bytes is the default everywhere: it passes every path IPv6 allows, so nothing is fragmented or dropped for
/// size. A peer on a loopback address is different: the path is this host's loopback interface (MTU 64 KiB), so
/// a datagram may carry DTLS's largest record. Fewer, larger datagrams cut what every packet costs (SCTP, DTLS,
/// system calls): a bulk transfer between an edge and a client on one host moves several times faster.
public enum DatagramSize {
    /// The default: safe on any path.
    public static let safe = 1200
    /// DTLS's largest record (2^14 bytes of plaintext, RFC 6347 §4.1) with its header (13 bytes) and AES-GCM's
    /// explicit nonce and tag (24).
    public static let largestRecordDatagram = 16 * 1024 + 37

    /// The size to use toward `peer`: `loopback` when the peer is on a loopback address and `loopback` is set,
    /// `configured` otherwise.
    public static func toward(_ peer: SocketAddress?, configured: Int, loopback: Int?) -> Int {
        guard let loopback, let peer, isLoopback(peer) else { return configured }
        return max(configured, loopback)
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let v4):
            // 127.0.0.0/8, in network byte order.
            return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            let isLoopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
            // ::ffff:127.x.y.z, an IPv4 loopback address on a dual-stack socket.
            let isMappedLoopback =
                bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
                && bytes[12] == 127
            return isLoopback || isMappedLoopback
        case .unixDomainSocket:
            return false
        }
    }

    /// The receive buffer slot one datagram needs when peers may send up to `largest` bytes (recvmmsg splits one
    /// read buffer into equal slots, and cuts a datagram that does not fit its slot).
    static func receiveSlot(largest: Int) -> Int { max(2048, (largest + 511) / 512 * 512) }
}

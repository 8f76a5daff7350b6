import CHopGateDTLS
import COpenSSL
import NIOCore

/// The server's door: answers ClientHellos from unknown peers with a stateless cookie (HelloVerifyRequest,
/// RFC 6347 §4.2.1) through DTLSv1_listen, and hands over a connection only for a ClientHello that returns a valid
/// cookie. Until then nothing is kept for a peer, so a flood of spoofed ClientHellos costs no memory.
final class DTLSCookieListener {
    enum Outcome {
        /// Send these datagrams (the HelloVerifyRequest) back; keep nothing.
        case reply([ByteBuffer])
        /// Not a ClientHello, or malformed: ignore it.
        case dropped
        /// A ClientHello with a valid cookie: this connection continues the handshake.
        case accepted(DTLSConnection)
    }

    private let context: DTLSContext
    private let mtu: Int
    private var ssl: OpaquePointer
    private var bio: OpaquePointer
    private let address: OpaquePointer

    init(context: DTLSContext, mtu: Int) throws {
        self.context = context
        self.mtu = mtu
        guard let address = BIO_ADDR_new() else { throw DTLSError(.configuration, "out of memory") }
        self.address = address
        do {
            (ssl, bio) = try Self.makeSSL(context: context, mtu: mtu)
        } catch {
            BIO_ADDR_free(address)
            throw error
        }
    }

    deinit {
        SSL_free(ssl)
        BIO_ADDR_free(address)
    }

    /// Handles one datagram from a peer that has no session. `peerKey` identifies the peer's address and port:
    /// the cookie is an HMAC over it.
    func receive(_ datagram: ByteBuffer, peerKey: [UInt8], allocator: ByteBufferAllocator) -> Outcome {
        hg_dgram_bio_set_peer(bio, peerKey, peerKey.count)
        datagram.withUnsafeReadableBytes { bytes in
            hg_dgram_bio_feed(bio, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        ERR_clear_error()
        let result = DTLSv1_listen(ssl, address)
        let reply = takeDatagrams(from: bio, allocator: allocator)
        if result == 1 {
            // The accepted SSL goes to the connection only once a fresh one can take its place; otherwise the
            // ClientHello is dropped (the client retransmits) and this SSL stays ours.
            guard let fresh = try? Self.makeSSL(context: context, mtu: mtu) else { return .dropped }
            let connection = DTLSConnection(acceptedSSL: ssl, bio: bio, context: context)
            (ssl, bio) = fresh
            return .accepted(connection)
        }
        if result < 0 {
            // A fatal error leaves the listening SSL unusable: start over with a fresh one when we can (keeping the
            // old one is safe too: DTLSv1_listen clears it on entry).
            _ = drainOpenSSLErrors()
            if let fresh = try? Self.makeSSL(context: context, mtu: mtu) {
                SSL_free(ssl)
                (ssl, bio) = fresh
            }
        }
        return reply.isEmpty ? .dropped : .reply(reply)
    }

    private static func makeSSL(context: DTLSContext, mtu: Int) throws -> (OpaquePointer, OpaquePointer) {
        guard let ssl = SSL_new(context.pointer) else {
            throw DTLSError(.configuration, "OpenSSL cannot make a DTLS session: \(drainOpenSSLErrors())")
        }
        guard let bio = hg_dgram_bio_new(mtu) else {
            SSL_free(ssl)
            throw DTLSError(.configuration, "cannot make the datagram BIO")
        }
        SSL_set_bio(ssl, bio, bio)
        guard hg_ssl_set_link_mtu(ssl, mtu) == 1 else {
            SSL_free(ssl)
            throw DTLSError(.configuration, "OpenSSL refused an MTU of \(mtu) bytes")
        }
        hg_ssl_use_fast_retransmission(ssl)
        return (ssl, bio)
    }
}

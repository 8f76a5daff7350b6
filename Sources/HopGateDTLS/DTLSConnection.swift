import CHopGateDTLS
import COpenSSL
import FoundationEssentials
import Glibc
import HopGateCore
import NIOCore

/// What feeding a connection produced, in order.
enum DTLSConnectionEvent {
    case handshakeCompleted
    case record(ByteBuffer)
    case closedByPeer
    case failed(DTLSError)
}

/// One DTLS session's OpenSSL state: an SSL object over the datagram BIO. It opens no socket and reads no clock:
/// the caller feeds received datagrams in, takes datagrams to send out, and calls `handleTimeout` when
/// `retransmitDelayMilliseconds` has passed. Not thread-safe: one event loop drives it.
final class DTLSConnection {
    enum State {
        case handshaking
        case established
        case closed
    }

    private(set) var state = State.handshaking
    private let ssl: OpaquePointer
    private let bio: OpaquePointer
    private let context: DTLSContext
    private let serverName: String?
    /// Where the next record is decrypted to, one maximal record large: DTLS never returns more than one record
    /// per read. A large record is handed on in it, a small one copied out so the landing is used again.
    private var landing: ByteBuffer?
    private static let landingBytes = 17 * 1024
    /// From this size a record keeps its landing buffer: copying 16 KB records out cost a copy of every byte
    /// received, while an allocation of a small buffer per small record (acknowledgements) is cheap.
    private static let handOverBytes = 4096
    /// Datagrams to send, in order: records are encrypted straight into it.
    private var outgoing = DatagramQueue()
    /// Room a record's datagram needs beyond the record: DTLS's 13-byte header and the cipher's explicit nonce,
    /// tag or MAC and padding (37 bytes with AES-GCM; more with CBC suites).
    private static let recordOverhead = 256

    /// A client connection to `serverName` (used for SNI and, unless pinned by fingerprint, the name check).
    init(clientContext context: DTLSContext, mtu: Int, serverName: String) throws {
        guard !serverName.isEmpty else { throw DTLSError(.configuration, "the server name is empty") }
        guard let ssl = SSL_new(context.pointer) else {
            throw DTLSError(.configuration, "OpenSSL cannot make a DTLS session: \(drainOpenSSLErrors())")
        }
        guard let bio = hg_dgram_bio_new(mtu) else {
            SSL_free(ssl)
            throw DTLSError(.configuration, "cannot make the datagram BIO")
        }
        self.ssl = ssl
        self.bio = bio
        self.context = context
        self.serverName = serverName
        SSL_set_bio(ssl, bio, bio)
        guard hg_ssl_set_link_mtu(ssl, mtu) == 1 else {
            throw DTLSError(.configuration, "OpenSSL refused an MTU of \(mtu) bytes")
        }
        hg_ssl_use_fast_retransmission(ssl)
        SSL_set_connect_state(ssl)
        let isAddress = Self.isIPAddress(serverName)
        // SNI carries host names only (RFC 6066 §3).
        if !isAddress && hg_ssl_set_server_name(ssl, serverName) != 1 {
            throw DTLSError(.configuration, "'\(serverName)' cannot be sent as the TLS server name")
        }
        switch context.verification {
        case .systemTrustStore, .caFile:
            // A name check that silently failed to install would accept any trusted certificate: refuse instead.
            let installed =
                isAddress
                ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1
                : SSL_set1_host(ssl, serverName) == 1
            guard installed else {
                throw DTLSError(.configuration, "cannot check the server's certificate against '\(serverName)'")
            }
        case .fingerprint, .insecure, nil:
            break
        }
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, text, &address) == 1 || inet_pton(AF_INET6, text, &address) == 1
    }

    /// A server connection from an SSL object that `DTLSv1_listen` accepted (it has the ClientHello buffered).
    init(acceptedSSL ssl: OpaquePointer, bio: OpaquePointer, context: DTLSContext) {
        self.ssl = ssl
        self.bio = bio
        self.context = context
        self.serverName = nil
    }

    deinit { SSL_free(ssl) }

    // MARK: - Driving

    /// Starts (client) or continues (server) the handshake.
    func advance() -> [DTLSConnectionEvent] {
        var events: [DTLSConnectionEvent] = []
        pump(&events)
        return events
    }

    /// Feeds one received datagram. OpenSSL reads it in place while it advances: copying it in first cost an
    /// allocation and a copy of every datagram (with bundled packets, 16 KB each on loopback).
    func receive(_ datagram: ByteBuffer) -> [DTLSConnectionEvent] {
        guard state != .closed else { return [] }
        return datagram.withUnsafeReadableBytes { bytes in
            hg_dgram_bio_lend(bio, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
            defer { hg_dgram_bio_take_back(bio) }
            return advance()
        }
    }

    /// Milliseconds until OpenSSL wants `handleTimeout`, or nil when no retransmission timer runs.
    var retransmitDelayMilliseconds: Int? {
        guard state == .handshaking else { return nil }
        let delay = hg_ssl_timeout_ms(ssl)
        return delay < 0 ? nil : delay
    }

    /// Retransmits the last flight when its timer has fired.
    func handleTimeout() -> [DTLSConnectionEvent] {
        guard state == .handshaking else { return [] }
        ERR_clear_error()
        if hg_ssl_handle_timeout(ssl) < 0 {
            state = .closed
            return [.failed(DTLSError(.handshakeTimeout, "the peer stopped answering during the DTLS handshake"))]
        }
        return []
    }

    /// Once the handshake is done: sends datagrams of up to `loopback` bytes from now on when `peer` is on a
    /// loopback address (see `DatagramSize`), and keeps the size the connection was made with otherwise.
    func enlargeDatagrams(toward peer: SocketAddress?, configured: Int, loopback: Int?) throws(DTLSError) {
        let size = DatagramSize.toward(peer, configured: configured, loopback: loopback)
        guard size != configured else { return }
        guard hg_ssl_change_mtu(ssl, size) == 1 else {
            throw DTLSError(.configuration, "OpenSSL refused an MTU of \(size) bytes")
        }
    }

    /// The largest record `send` takes: one datagram less DTLS's header, nonce and tag.
    var maximumRecordSize: Int { Int(DTLS_get_data_mtu(ssl)) }

    /// Encrypts one record into one datagram. An empty record sends nothing: OpenSSL writes no empty records.
    func send(_ record: ByteBuffer) throws(DTLSError) {
        guard state == .established else { throw DTLSError(.notEstablished, "the DTLS session is not established") }
        let limit = maximumRecordSize
        guard record.readableBytes <= limit else {
            throw DTLSError(
                .recordTooLarge,
                "a record of \(record.readableBytes) bytes does not fit one datagram (\(limit))"
            )
        }
        guard record.readableBytes > 0 else { return }
        moveQueuedDatagrams()  // whatever OpenSSL wrote before goes first
        ERR_clear_error()
        var written: Int32 = 0
        // The datagram goes straight into the outgoing queue: no allocation of its own, one copy.
        outgoing.write(upTo: record.readableBytes + Self.recordOverhead) { space in
            hg_dgram_bio_set_destination(bio, space.baseAddress?.assumingMemoryBound(to: UInt8.self), space.count)
            written = record.withUnsafeReadableBytes { bytes in
                SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))
            }
            return hg_dgram_bio_take_destination(bio)
        }
        moveQueuedDatagrams()
        guard written == record.readableBytes else {
            throw DTLSError(.protocolError, "OpenSSL could not encrypt a record: \(drainOpenSSLErrors())")
        }
    }

    /// Sends close_notify (if the session got that far) and stops.
    func close() {
        if state == .established {
            ERR_clear_error()
            SSL_shutdown(ssl)
            ERR_clear_error()
        }
        state = .closed
    }

    /// The datagrams OpenSSL produced since the last call, in order, in runs of equal size (see `DatagramQueue`).
    func takeOutgoing() -> [DatagramQueue.Run] {
        moveQueuedDatagrams()
        return outgoing.take()
    }

    /// The same, one buffer a datagram.
    func takeOutgoingDatagrams() -> [ByteBuffer] {
        takeOutgoing().flatMap(\.datagrams)
    }

    /// Datagrams OpenSSL wrote to the BIO's own queue (handshake flights, alerts) join the outgoing queue.
    private func moveQueuedDatagrams() {
        let count = hg_dgram_bio_out_count(bio)
        guard count > 0 else { return }
        for index in 0..<count {
            var length = 0
            let bytes = hg_dgram_bio_out_datagram(bio, index, &length)
            outgoing.write(upTo: length) { space in
                space.copyMemory(from: UnsafeRawBufferPointer(start: bytes, count: length))
                return length
            }
        }
        hg_dgram_bio_out_clear(bio)
    }

    // MARK: - OpenSSL calls

    private func pump(_ events: inout [DTLSConnectionEvent]) {
        if state == .handshaking {
            ERR_clear_error()
            let result = SSL_do_handshake(ssl)
            if result == 1 {
                if let failure = checkPinnedFingerprint() {
                    state = .closed
                    events.append(.failed(failure))
                    return
                }
                state = .established
                events.append(.handshakeCompleted)
            } else {
                let error = SSL_get_error(ssl, result)
                if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return }
                state = .closed
                events.append(.failed(handshakeFailure()))
                return
            }
        }
        guard state == .established else { return }
        while true {
            ERR_clear_error()
            var buffer = landing ?? ByteBufferAllocator().buffer(capacity: Self.landingBytes)
            landing = nil
            buffer.clear()
            var count: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.landingBytes) { out in
                count = SSL_read(ssl, out.baseAddress, Int32(Self.landingBytes))
                return Int(max(count, 0))
            }
            if count > 0 {
                if count >= Self.handOverBytes {
                    events.append(.record(buffer))
                } else {
                    var record = ByteBufferAllocator().buffer(capacity: Int(count))
                    record.writeImmutableBuffer(buffer)
                    events.append(.record(record))
                    landing = buffer
                }
                continue
            }
            landing = buffer
            switch SSL_get_error(ssl, count) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return
            case SSL_ERROR_ZERO_RETURN:
                state = .closed
                events.append(.closedByPeer)
                return
            default:
                state = .closed
                let reason = drainOpenSSLErrors()
                events.append(
                    .failed(
                        DTLSError(
                            .protocolError,
                            "the DTLS session failed: \(reason.isEmpty ? "unknown error" : reason)"
                        )
                    )
                )
                return
            }
        }
    }

    private func checkPinnedFingerprint() -> DTLSError? {
        guard case .fingerprint(let expectedText) = context.verification,
            let expected = DTLSContext.normalizedFingerprint(expectedText)
        else { return nil }
        var digest = [UInt8](repeating: 0, count: 32)
        guard hg_ssl_peer_fingerprint(ssl, &digest) == 1 else {
            return DTLSError(.fingerprintMismatch, "the server sent no certificate; expected fingerprint \(expected)")
        }
        let seen = Hex.encode(digest)
        guard seen == expected else {
            return DTLSError(
                .fingerprintMismatch,
                "the server's certificate has SHA-256 fingerprint \(seen), not the pinned \(expected) (\(peerDescription))"
            )
        }
        return nil
    }

    private var peerDescription: String {
        var buffer = [CChar](repeating: 0, count: 1024)
        guard hg_ssl_describe_peer(ssl, &buffer, buffer.count) == 1 else { return "no certificate" }
        return String(cBuffer: buffer)
    }

    /// Says why the handshake failed, in the terms of what was expected and what was seen.
    private func handshakeFailure() -> DTLSError {
        let openssl = drainOpenSSLErrors()
        let verifyResult = Int32(SSL_get_verify_result(ssl))
        guard serverName != nil, verifyResult != X509_V_OK else {
            return DTLSError(
                .protocolError,
                "the DTLS handshake failed: \(openssl.isEmpty ? "the peer gave up" : openssl)"
            )
        }
        let seen = peerDescription
        let name = serverName ?? "?"
        let trust =
            switch context.verification {
            case .caFile(let path): "the CA file \(path)"
            default: "the system trust store"
            }
        let message: String
        switch verifyResult {
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            message = "the server's certificate is not valid for \(name) (seen: \(seen))"
        case X509_V_ERR_CERT_HAS_EXPIRED:
            message = "the server's certificate has expired (seen: \(seen))"
        case X509_V_ERR_CERT_NOT_YET_VALID:
            message = "the server's certificate is not valid yet (seen: \(seen))"
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
            X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
            X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            message = "the server's certificate is not trusted by \(trust) (seen: \(seen))"
        default:
            let reason = String(cString: X509_verify_cert_error_string(Int(verifyResult)))
            message = "the server's certificate was rejected: \(reason) (seen: \(seen))"
        }
        return DTLSError(.certificateRejected, message)
    }
}

/// Moves the datagrams queued in a datagram BIO into buffers, in order, and empties the queue.
func takeDatagrams(from bio: OpaquePointer, allocator: ByteBufferAllocator) -> [ByteBuffer] {
    let count = hg_dgram_bio_out_count(bio)
    guard count > 0 else { return [] }
    var datagrams: [ByteBuffer] = []
    datagrams.reserveCapacity(count)
    for index in 0..<count {
        var length = 0
        let bytes = hg_dgram_bio_out_datagram(bio, index, &length)
        var buffer = allocator.buffer(capacity: length)
        buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: length))
        datagrams.append(buffer)
    }
    hg_dgram_bio_out_clear(bio)
    return datagrams
}

/// Why a DTLS session could not be set up or ended abnormally. Equal by code; the message says what a person
/// needs to know (what was expected, what was seen).
public struct DTLSError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The server's certificate failed verification (untrusted issuer, expired, wrong name).
        public static let certificateRejected = Code(name: "certificate_rejected")
        /// The server's certificate is not the pinned one.
        public static let fingerprintMismatch = Code(name: "fingerprint_mismatch")
        /// The handshake did not finish within its deadline.
        public static let handshakeTimeout = Code(name: "handshake_timeout")
        /// Nothing arrived from the peer for the idle timeout.
        public static let idleTimeout = Code(name: "idle_timeout")
        /// The peer broke the protocol, or OpenSSL failed.
        public static let protocolError = Code(name: "protocol_error")
        /// A record larger than one datagram can carry.
        public static let recordTooLarge = Code(name: "record_too_large")
        /// The session is not established (not yet, or no longer).
        public static let notEstablished = Code(name: "not_established")
        /// Bad configuration: an unreadable CA file, a certificate that does not load.
        public static let configuration = Code(name: "configuration")
        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: DTLSError, rhs: DTLSError) -> Bool { lhs.code == rhs.code }
}

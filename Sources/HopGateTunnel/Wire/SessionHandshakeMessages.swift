import NIOCore

/// The session handshake (DESIGN.md §2): plain DTLS records exchanged before any SCTP association exists, so only
/// an authenticated client ever reaches usrsctp. The client sends `Hello`; the edge answers `Welcome` or `Reject`.
///
/// Each message is one DTLS record, so it must fit one datagram: `maximumSize`.
public enum SessionHandshakeMessage: Equatable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    case reject(Reject)

    /// "HGT" and the message format's version: lets either side tell a HopGate peer from a stranger at once.
    static let magic: [UInt8] = [0x48, 0x47, 0x54, 0x01]
    /// One record of a 1200-byte datagram: 1200 less DTLS 1.2's AES-GCM overhead (13 + 8 + 16).
    public static let maximumSize = 1163

    /// What a client proves it may serve the domain with.
    public enum Credential: Equatable, Sendable {
        /// The domain's 64-character client API key, checked against its Argon2id hash.
        case clientAPIKey(String)
        /// A token from an earlier Welcome: checked in microseconds, so a restart storm is no Argon2 storm.
        case resumptionToken([UInt8])
    }

    public struct Hello: Equatable, Sendable {
        /// The tunnel protocol version the client speaks.
        public var protocolVersion: UInt16
        public var domain: String
        public var credential: Credential
        /// The path prefixes this client serves ("/" for everything).
        public var pathPrefixes: [String]
        /// The client's software version, for logs.
        public var clientVersion: String

        public init(
            protocolVersion: UInt16,
            domain: String,
            credential: Credential,
            pathPrefixes: [String],
            clientVersion: String
        ) {
            self.protocolVersion = protocolVersion
            self.domain = domain
            self.credential = credential
            self.pathPrefixes = pathPrefixes
            self.clientVersion = clientVersion
        }
    }

    public struct Welcome: Equatable, Sendable {
        public var sessionID: UInt64
        public var boundDomain: String
        /// The most exchanges the edge opens at once on this session.
        public var maximumConcurrentExchanges: UInt32
        /// The largest header block either side may send.
        public var maximumHeaderBytes: UInt32
        /// Bytes each side may send on a new exchange before the receiver grants more.
        public var initialCredit: UInt32
        public var keepaliveIntervalMilliseconds: UInt32
        public var idleTimeoutMilliseconds: UInt32
        /// Presented instead of the key on the next connect; empty when the edge issues none.
        public var resumptionToken: [UInt8]

        public init(
            sessionID: UInt64,
            boundDomain: String,
            maximumConcurrentExchanges: UInt32,
            maximumHeaderBytes: UInt32,
            initialCredit: UInt32,
            keepaliveIntervalMilliseconds: UInt32,
            idleTimeoutMilliseconds: UInt32,
            resumptionToken: [UInt8]
        ) {
            self.sessionID = sessionID
            self.boundDomain = boundDomain
            self.maximumConcurrentExchanges = maximumConcurrentExchanges
            self.maximumHeaderBytes = maximumHeaderBytes
            self.initialCredit = initialCredit
            self.keepaliveIntervalMilliseconds = keepaliveIntervalMilliseconds
            self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
            self.resumptionToken = resumptionToken
        }
    }

    public struct Reject: Equatable, Sendable {
        public enum Code: UInt16, Sendable, CaseIterable {
            case unknownDomain = 1
            case badKey = 2
            case unsupportedVersion = 3
            case rateLimited = 4
            case serverBusy = 5
            case malformedHello = 6
            case expiredToken = 7

            /// Whether trying again later can work: a client stops (and says why) on the others.
            public var isRetryable: Bool {
                switch self {
                case .rateLimited, .serverBusy, .expiredToken: true
                case .unknownDomain, .badKey, .unsupportedVersion, .malformedHello: false
                }
            }
        }

        public var code: Code
        public var message: String

        public init(code: Code, message: String) {
            self.code = code
            self.message = message
        }
    }

    private enum Kind: UInt8 {
        case hello = 1
        case welcome = 2
        case reject = 3
    }

    private enum CredentialKind: UInt8 {
        case clientAPIKey = 1
        case resumptionToken = 2
    }

    /// Whether a record is a handshake message rather than an SCTP packet: SCTP packets start with the source port
    /// (5000, 0x13 0x88), handshake messages with "HGT". Asked of every record, so it reads the bytes in place:
    /// comparing arrays cost two allocations a record.
    public static func isHandshake(_ record: ByteBuffer) -> Bool {
        let at = record.readerIndex
        return record.getInteger(at: at, as: UInt8.self) == magic[0]
            && record.getInteger(at: at + 1, as: UInt8.self) == magic[1]
            && record.getInteger(at: at + 2, as: UInt8.self) == magic[2]
    }

    // MARK: - Encoding

    /// The message as one record; throws if it would not fit one datagram.
    public func encoded() throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.magic)
        switch self {
        case .hello(let hello):
            buffer.writeInteger(Kind.hello.rawValue)
            buffer.writeInteger(hello.protocolVersion)
            try buffer.writeShortString(hello.domain)
            switch hello.credential {
            case .clientAPIKey(let key):
                buffer.writeInteger(CredentialKind.clientAPIKey.rawValue)
                try buffer.writeShortString(key)
            case .resumptionToken(let token):
                buffer.writeInteger(CredentialKind.resumptionToken.rawValue)
                try buffer.writeShortBytes(token)
            }
            guard hello.pathPrefixes.count <= UInt8.max else { throw TunnelWireError("more than 255 path prefixes") }
            buffer.writeInteger(UInt8(hello.pathPrefixes.count))
            for prefix in hello.pathPrefixes { try buffer.writeShortString(prefix) }
            try buffer.writeShortString(hello.clientVersion)
        case .welcome(let welcome):
            buffer.writeInteger(Kind.welcome.rawValue)
            buffer.writeInteger(welcome.sessionID)
            try buffer.writeShortString(welcome.boundDomain)
            buffer.writeInteger(welcome.maximumConcurrentExchanges)
            buffer.writeInteger(welcome.maximumHeaderBytes)
            buffer.writeInteger(welcome.initialCredit)
            buffer.writeInteger(welcome.keepaliveIntervalMilliseconds)
            buffer.writeInteger(welcome.idleTimeoutMilliseconds)
            try buffer.writeShortBytes(welcome.resumptionToken)
        case .reject(let reject):
            buffer.writeInteger(Kind.reject.rawValue)
            buffer.writeInteger(reject.code.rawValue)
            try buffer.writeShortString(reject.message)
        }
        guard buffer.readableBytes <= Self.maximumSize else {
            throw TunnelWireError(
                "the handshake message is \(buffer.readableBytes) bytes; one datagram carries \(Self.maximumSize) "
                    + "(fewer or shorter path prefixes)"
            )
        }
        return buffer
    }

    // MARK: - Decoding

    /// Parses one record. Throws on anything that is not exactly a well-formed message.
    public init(decoding record: ByteBuffer) throws {
        var buffer = record
        guard buffer.readableBytes <= Self.maximumSize else {
            throw TunnelWireError("a handshake message over one datagram")
        }
        guard buffer.readBytes(length: Self.magic.count) == Self.magic else {
            throw TunnelWireError("not a HopGate tunnel handshake (wrong magic or format version)")
        }
        let kindByte = try buffer.readWireInteger("the message type", as: UInt8.self)
        switch Kind(rawValue: kindByte) {
        case .hello:
            let version = try buffer.readWireInteger("the protocol version", as: UInt16.self)
            let domain = try buffer.readShortString("the domain")
            let credential: Credential
            switch CredentialKind(rawValue: try buffer.readWireInteger("the credential type", as: UInt8.self)) {
            case .clientAPIKey: credential = .clientAPIKey(try buffer.readShortString("the client API key"))
            case .resumptionToken: credential = .resumptionToken(try buffer.readShortBytes("the resumption token"))
            case nil: throw TunnelWireError("an unknown credential type")
            }
            let count = Int(try buffer.readWireInteger("the path prefix count", as: UInt8.self))
            var prefixes: [String] = []
            for _ in 0..<count { prefixes.append(try buffer.readShortString("a path prefix")) }
            let clientVersion = try buffer.readShortString("the client version")
            try buffer.expectFullyRead("Hello")
            self = .hello(
                Hello(
                    protocolVersion: version,
                    domain: domain,
                    credential: credential,
                    pathPrefixes: prefixes,
                    clientVersion: clientVersion
                )
            )
        case .welcome:
            let welcome = Welcome(
                sessionID: try buffer.readWireInteger("the session id"),
                boundDomain: try buffer.readShortString("the bound domain"),
                maximumConcurrentExchanges: try buffer.readWireInteger("the exchange limit"),
                maximumHeaderBytes: try buffer.readWireInteger("the header limit"),
                initialCredit: try buffer.readWireInteger("the initial credit"),
                keepaliveIntervalMilliseconds: try buffer.readWireInteger("the keepalive interval"),
                idleTimeoutMilliseconds: try buffer.readWireInteger("the idle timeout"),
                resumptionToken: try buffer.readShortBytes("the resumption token")
            )
            try buffer.expectFullyRead("Welcome")
            self = .welcome(welcome)
        case .reject:
            let rawCode = try buffer.readWireInteger("the reject code", as: UInt16.self)
            let message = try buffer.readShortString("the reject message")
            try buffer.expectFullyRead("Reject")
            // An unknown code from a newer edge is still a rejection; treat it as the non-retryable kind.
            self = .reject(Reject(code: Reject.Code(rawValue: rawCode) ?? .malformedHello, message: message))
        case nil:
            throw TunnelWireError("an unknown handshake message type \(kindByte)")
        }
    }
}

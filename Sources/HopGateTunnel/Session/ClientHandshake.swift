import NIOCore

/// The client's side of the session handshake: sends the Hello, reads the answer.
public struct ClientHandshake: Sendable {
    public enum Outcome: Sendable, Equatable {
        case welcomed(SessionHandshakeMessage.Welcome)
        case rejected(SessionHandshakeMessage.Reject)
        /// The edge answered something that is not a Welcome or Reject.
        case failed(String)
        /// Still waiting (a stray record).
        case waiting
    }

    /// The tunnel protocol version this build speaks.
    public static let protocolVersion: UInt16 = 1

    public let hello: SessionHandshakeMessage.Hello
    private var finished = false

    public init(
        domain: String,
        credential: SessionHandshakeMessage.Credential,
        pathPrefixes: [String],
        clientVersion: String
    ) {
        hello = SessionHandshakeMessage.Hello(
            protocolVersion: Self.protocolVersion,
            domain: domain,
            credential: credential,
            pathPrefixes: pathPrefixes,
            clientVersion: clientVersion
        )
    }

    /// The Hello record to send; throws when it would not fit one datagram (too many path prefixes).
    public func helloRecord() throws -> ByteBuffer {
        try SessionHandshakeMessage.hello(hello).encoded()
    }

    /// The largest initial credit a client accepts: the edge chooses the client's receive window per exchange.
    public static let maximumInitialCredit: UInt32 = 16 * 1024 * 1024

    /// Why a Welcome's limits cannot be used, or nil.
    static func problem(with welcome: SessionHandshakeMessage.Welcome) -> String? {
        if welcome.initialCredit < UInt32(ExchangeStateMachine.minimumInitialCredit)
            || welcome.initialCredit > maximumInitialCredit
        {
            return "an initial credit of \(welcome.initialCredit) bytes"
        }
        if !LivenessStateMachine.isValid(
            keepaliveIntervalMilliseconds: UInt64(welcome.keepaliveIntervalMilliseconds),
            idleTimeoutMilliseconds: UInt64(welcome.idleTimeoutMilliseconds)
        ) {
            return
                "a keepalive of \(welcome.keepaliveIntervalMilliseconds) ms with an idle timeout of \(welcome.idleTimeoutMilliseconds) ms"
        }
        if welcome.maximumConcurrentExchanges == 0 || welcome.maximumHeaderBytes < 1024 {
            return
                "limits of \(welcome.maximumConcurrentExchanges) exchanges and \(welcome.maximumHeaderBytes) header bytes"
        }
        return nil
    }

    public mutating func receive(_ record: ByteBuffer) -> Outcome {
        guard !finished else { return .waiting }
        do {
            switch try SessionHandshakeMessage(decoding: record) {
            case .welcome(let welcome):
                finished = true
                guard welcome.boundDomain == hello.domain else {
                    return .failed("the edge bound \(welcome.boundDomain), not \(hello.domain)")
                }
                if let problem = Self.problem(with: welcome) {
                    return .failed("the edge's Welcome is unusable: \(problem)")
                }
                return .welcomed(welcome)
            case .reject(let reject):
                finished = true
                return .rejected(reject)
            case .hello:
                finished = true
                return .failed("the edge answered with a Hello")
            }
        } catch {
            finished = true
            return .failed("the edge's answer does not parse: \(error)")
        }
    }
}

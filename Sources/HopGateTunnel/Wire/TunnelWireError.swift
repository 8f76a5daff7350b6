/// A message or frame that does not parse. The peer sent something no HopGate sends: the exchange (or, during the
/// handshake, the session) is ended with this as the reason.
public struct TunnelWireError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

import NIOCore

/// What the edge reads from a TLS ClientHello before choosing how to answer it: the SNI name and the ALPN protocols.
/// A ClientHello offering only `acme-tls/1` is a CA validating a TLS-ALPN-01 challenge (RFC 8737 §3), which gets the
/// challenge certificate instead of the site's.
public struct ClientHello: Equatable, Sendable {
    public var serverName: String?
    public var applicationProtocols: [String]

    public init(serverName: String?, applicationProtocols: [String]) {
        self.serverName = serverName
        self.applicationProtocols = applicationProtocols
    }

    public enum Parse: Equatable {
        /// The bytes so far are a ClientHello's beginning.
        case needMoreData
        /// Not a TLS ClientHello (or a malformed one): the TLS handler will say so.
        case notClientHello
        case complete(ClientHello)
    }

    /// The largest ClientHello the edge waits for (a post-quantum key share makes them a few KiB).
    static let maximumBytes = 32 * 1024

    /// Parses the start of a TLS connection. Handshake records are joined first: a ClientHello may span several.
    public static func parse(_ bytes: ByteBuffer) -> Parse {
        var input = bytes
        var handshake = ByteBuffer()
        while true {
            guard input.readableBytes >= 5 else { return .needMoreData }
            guard let contentType = input.readInteger(as: UInt8.self), contentType == 22,
                let major = input.readInteger(as: UInt8.self), major == 3,
                input.readInteger(as: UInt8.self) != nil,
                let length = input.readInteger(as: UInt16.self), length > 0, length <= 16_384
            else { return .notClientHello }
            guard var fragment = input.readSlice(length: Int(length)) else { return .needMoreData }
            handshake.writeBuffer(&fragment)
            guard handshake.readableBytes >= 4 else { continue }
            let type = handshake.getInteger(at: handshake.readerIndex, as: UInt8.self)
            guard type == 1, let body = handshake.getUInt24(at: handshake.readerIndex + 1),
                body <= maximumBytes
            else { return .notClientHello }
            guard handshake.readableBytes >= 4 + body else { continue }
            guard var message = handshake.getSlice(at: handshake.readerIndex + 4, length: body),
                let hello = parseBody(&message)
            else { return .notClientHello }
            return .complete(hello)
        }
    }

    /// The ClientHello body (RFC 8446 §4.1.2): version, random, session id, cipher suites, compression methods,
    /// then the extensions.
    private static func parseBody(_ message: inout ByteBuffer) -> ClientHello? {
        guard message.readSlice(length: 2 + 32) != nil,
            message.readVector(lengthBytes: 1) != nil,
            message.readVector(lengthBytes: 2) != nil,
            message.readVector(lengthBytes: 1) != nil
        else { return nil }
        var hello = ClientHello(serverName: nil, applicationProtocols: [])
        guard message.readableBytes > 0 else { return hello }
        guard var extensions = message.readVector(lengthBytes: 2) else { return nil }
        while extensions.readableBytes > 0 {
            guard let type = extensions.readInteger(as: UInt16.self), var data = extensions.readVector(lengthBytes: 2)
            else { return nil }
            switch type {
            case 0:  // server_name (RFC 6066 §3): a list of (type, name); type 0 is a host name.
                guard var names = data.readVector(lengthBytes: 2) else { return nil }
                while names.readableBytes > 0 {
                    guard let nameType = names.readInteger(as: UInt8.self), var name = names.readVector(lengthBytes: 2)
                    else { return nil }
                    if nameType == 0 { hello.serverName = name.readString(length: name.readableBytes) }
                }
            case 16:  // application_layer_protocol_negotiation (RFC 7301 §3.1)
                guard var protocols = data.readVector(lengthBytes: 2) else { return nil }
                while protocols.readableBytes > 0 {
                    guard var name = protocols.readVector(lengthBytes: 1) else { return nil }
                    hello.applicationProtocols.append(name.readString(length: name.readableBytes) ?? "")
                }
            default:
                break
            }
        }
        return hello
    }

    /// Whether this is a TLS-ALPN-01 validation: `acme-tls/1` and nothing else (RFC 8737 §3).
    public var isACMEValidation: Bool { applicationProtocols == ["acme-tls/1"] }
}

extension ByteBuffer {
    fileprivate func getUInt24(at index: Int) -> Int? {
        guard let high = getInteger(at: index, as: UInt8.self), let low = getInteger(at: index + 1, as: UInt16.self)
        else { return nil }
        return Int(high) << 16 | Int(low)
    }

    /// A length-prefixed vector: the length in `lengthBytes` bytes (1 or 2), then that many bytes.
    fileprivate mutating func readVector(lengthBytes: Int) -> ByteBuffer? {
        let save = readerIndex
        let length: Int?
        switch lengthBytes {
        case 1: length = readInteger(as: UInt8.self).map(Int.init)
        default: length = readInteger(as: UInt16.self).map(Int.init)
        }
        guard let length, let vector = readSlice(length: length) else {
            moveReaderIndex(to: save)
            return nil
        }
        return vector
    }
}

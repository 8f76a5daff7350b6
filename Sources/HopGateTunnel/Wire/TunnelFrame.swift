import HopGateCore
import NIOCore

/// One header line. Names keep the case they arrived in; HTTP compares them without case.
public struct HeaderField: Equatable, Sendable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Limits a decoder enforces, from the session's Welcome.
public struct FrameLimits: Sendable {
    /// The largest header block (the sum of names and values, plus 4 bytes a field for lengths).
    public var maximumHeaderBytes: Int
    /// The most header fields in one head.
    public var maximumHeaderCount: Int

    /// 64 KiB and 200 fields: above what browsers send (Chrome caps a request's headers near 250 KB, but nginx's
    /// default large_client_header_buffers is 32 KB), and small enough that a hostile peer cannot make the edge
    /// hold much per exchange.
    public static let standard = FrameLimits(maximumHeaderBytes: 64 * 1024, maximumHeaderCount: 200)

    public init(maximumHeaderBytes: Int, maximumHeaderCount: Int) {
        self.maximumHeaderBytes = maximumHeaderBytes
        self.maximumHeaderCount = maximumHeaderCount
    }
}

/// Why an exchange was cut short, in either direction.
public struct AbortReason: Equatable, Sendable {
    public enum Code: UInt16, Sendable, CaseIterable {
        /// The browser or the local service went away.
        case cancelled = 1
        /// The local service did not answer in time.
        case timeout = 2
        /// The local service refused the connection or could not be reached.
        case localServiceUnavailable = 3
        /// A malformed or unexpected frame.
        case protocolError = 4
        /// The header block or count was over the limit.
        case headersTooLarge = 5
        /// More data than the granted credit.
        case creditViolation = 6
        /// More concurrent exchanges than the session allows.
        case tooManyExchanges = 7
        /// The session is going away and will not take this exchange.
        case refused = 8
        /// Anything else.
        case internalError = 9
        /// The tunnel session ended before the exchange finished (never sent: each end says it to itself). A request
        /// without a body that got no answer may be sent again on another session.
        case sessionEnded = 10
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// What travels in one SCTP message. Exchange frames go on the exchange's own stream; `ping`, `pong` and
/// `goAway` on the control stream 0. Each message is exactly one frame, so a frame needs no length of its own.
public enum TunnelFrame: Equatable, Sendable {
    /// The start of an exchange, edge to client: the request line and headers (hop-by-hop ones already removed).
    case requestHead(method: String, scheme: String, authority: String, path: String, headers: HeaderFields)
    /// The answer's status and headers, client to edge. After a 101 the exchange carries raw bytes both ways.
    case responseHead(status: UInt16, headers: HeaderFields)
    /// Body bytes (or, after a 101, raw bytes), counted against the receiver's credit.
    case data(ByteBuffer)
    /// The sender has finished its side of the exchange.
    case end
    /// The sender gives the exchange up; both sides forget it.
    case abort(AbortReason)
    /// The receiver may take this many more data bytes on this exchange (like HTTP/2 WINDOW_UPDATE).
    case credit(UInt32)
    /// Liveness and round-trip time: the peer echoes the value in a `pong`.
    case ping(UInt64)
    case pong(UInt64)
    /// No new exchanges will be opened or accepted; those in flight may finish.
    case goAway(reason: String)

    enum Kind: UInt8 {
        case requestHead = 1
        case responseHead = 2
        case data = 3
        case end = 4
        case abort = 5
        case credit = 6
        case ping = 0x10
        case pong = 0x11
        case goAway = 0x12
    }

    // MARK: - Encoding

    /// Appends the data frame of `pieces` joined, without joining them first.
    public static func encodeData(_ pieces: some Collection<ByteBuffer>, into buffer: inout ByteBuffer) {
        buffer.writeInteger(Kind.data.rawValue)
        for piece in pieces { buffer.writeImmutableBuffer(piece) }
    }

    /// Appends the frame to `buffer`.
    public func encode(into buffer: inout ByteBuffer) throws {
        switch self {
        case .requestHead(let method, let scheme, let authority, let path, let headers):
            buffer.writeInteger(Kind.requestHead.rawValue)
            try Self.writeHead([method, scheme, authority, path], headers, into: &buffer)
        case .responseHead(let status, let headers):
            buffer.writeInteger(Kind.responseHead.rawValue)
            buffer.writeInteger(status)
            try Self.writeHead([], headers, into: &buffer)
        case .data(let bytes):
            Self.encodeData(CollectionOfOne(bytes), into: &buffer)
        case .end:
            buffer.writeInteger(Kind.end.rawValue)
        case .abort(let reason):
            buffer.writeInteger(Kind.abort.rawValue)
            buffer.writeInteger(reason.code.rawValue)
            try buffer.writeShortString(reason.message)
        case .credit(let increment):
            buffer.writeInteger(Kind.credit.rawValue)
            buffer.writeInteger(increment)
        case .ping(let value):
            buffer.writeInteger(Kind.ping.rawValue)
            buffer.writeInteger(value)
        case .pong(let value):
            buffer.writeInteger(Kind.pong.rawValue)
            buffer.writeInteger(value)
        case .goAway(let reason):
            buffer.writeInteger(Kind.goAway.rawValue)
            try buffer.writeShortString(reason)
        }
    }

    public func encoded() throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: encodedSizeEstimate)
        try encode(into: &buffer)
        return buffer
    }

    /// About what `encode` writes (exactly, for most frames): room to allocate once rather than grow by doubling.
    public var encodedSizeEstimate: Int {
        func strings(_ headers: HeaderFields) -> Int { 2 + headers.wireSize }
        switch self {
        case .requestHead(let method, let scheme, let authority, let path, let headers):
            return 1 + 8 + method.utf8.count + scheme.utf8.count + authority.utf8.count + path.utf8.count
                + strings(headers)
        case .responseHead(_, let headers): return 3 + strings(headers)
        case .data(let bytes): return 1 + bytes.readableBytes
        case .abort(let reason): return 5 + reason.message.utf8.count
        case .goAway(let reason): return 3 + reason.utf8.count
        case .end, .credit, .ping, .pong: return 9
        }
    }

    /// Writes `strings`, then the header fields behind their count, each string behind its 16-bit length, in one
    /// pass over the buffer's memory: a write each cost a bounds, capacity and exclusivity check, and with every
    /// name and value of every head that was a few percent of the instructions a request costs (callgrind).
    private static func writeHead(
        _ strings: [String],
        _ headers: HeaderFields,
        into buffer: inout ByteBuffer
    ) throws {
        guard headers.count <= UInt16.max else { throw TunnelWireError("more than 65535 header fields") }
        var size = 2
        for string in strings { size += try shortStringSize(string) }
        switch headers.storage {
        case .strings(let fields):
            for field in fields { size += try shortStringSize(field.name) + shortStringSize(field.value) }
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                var at = 0
                for string in strings { putShortString(string, into: out, at: &at) }
                putLength(fields.count, into: out, at: &at)
                for field in fields {
                    putShortString(field.name, into: out, at: &at)
                    putShortString(field.value, into: out, at: &at)
                }
                return at
            }
        case .wire(let bytes):
            // Read off the wire: written back as they came.
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                var at = 0
                for string in strings { putShortString(string, into: out, at: &at) }
                putLength(headers.count, into: out, at: &at)
                return at
            }
            buffer.writeImmutableBuffer(bytes)
        }
    }

    /// Writes a 16-bit big-endian length at `offset` and moves past it. Functions of their own rather than nested
    /// ones: those capture the offset, and each access to a captured variable is checked at run time.
    private static func putLength(_ value: Int, into out: UnsafeMutableRawBufferPointer, at offset: inout Int) {
        out[offset] = UInt8(truncatingIfNeeded: value >> 8)
        out[offset + 1] = UInt8(truncatingIfNeeded: value)
        offset += 2
    }

    /// Writes `string` behind its 16-bit length at `offset` and moves past it.
    private static func putShortString(_ string: String, into out: UnsafeMutableRawBufferPointer, at offset: inout Int)
    {
        putLength(string.utf8.count, into: out, at: &offset)
        copyUTF8(of: string, into: out, at: &offset)
    }

    private static func shortStringSize(_ string: String) throws -> Int {
        let bytes = string.utf8.count
        guard bytes <= UInt16.max else { throw TunnelWireError("a string of \(bytes) bytes is longer than 65535") }
        return 2 + bytes
    }

    // MARK: - Decoding

    /// Parses one SCTP message. Throws `TunnelWireError` for anything malformed, and `.headersTooLarge` as an
    /// `AbortReason` when a head is over `limits`, so the caller can answer with the right abort.
    public init(decoding message: ByteBuffer, limits: FrameLimits = .standard) throws {
        var strings = RecentStrings()
        try self.init(decoding: message, limits: limits, strings: &strings)
    }

    /// Parses one SCTP message, finding the strings of its head among `strings` when they were there before: a
    /// session keeps one for the heads it receives (see `RecentStrings`). With `keepingFieldBytes`, a head's fields
    /// are checked as they would be read but stay bytes (see `HeaderFields`).
    public init(
        decoding message: ByteBuffer,
        limits: FrameLimits = .standard,
        strings: inout RecentStrings,
        keepingFieldBytes: Bool = false
    ) throws {
        var buffer = message
        let kindByte = try buffer.readWireInteger("the frame type", as: UInt8.self)
        guard let kind = Kind(rawValue: kindByte) else { throw TunnelWireError("an unknown frame type \(kindByte)") }
        switch kind {
        case .requestHead:
            let headBytes = buffer.readableBytes
            guard headBytes <= limits.maximumHeaderBytes + 1024 else { throw Self.tooLarge(headBytes, limits) }
            let method = try buffer.readShortString("the method", recent: &strings)
            let scheme = try buffer.readShortString("the scheme", recent: &strings)
            let authority = try buffer.readShortString("the authority", recent: &strings)
            let path = try buffer.readShortString("the path", recent: &strings)
            let headers = try Self.readHeaders(
                &buffer,
                limits: limits,
                strings: &strings,
                keepingBytes: keepingFieldBytes
            )
            self = .requestHead(method: method, scheme: scheme, authority: authority, path: path, headers: headers)
        case .responseHead:
            let status = try buffer.readWireInteger("the status", as: UInt16.self)
            guard (100...999).contains(status) else {
                throw TunnelWireError("the status \(status) is not an HTTP status")
            }
            self = .responseHead(
                status: status,
                headers: try Self.readHeaders(
                    &buffer,
                    limits: limits,
                    strings: &strings,
                    keepingBytes: keepingFieldBytes
                )
            )
        case .data:
            self = .data(buffer.readSlice(length: buffer.readableBytes)!)
        case .end:
            self = .end
        case .abort:
            let rawCode = try buffer.readWireInteger("the abort code", as: UInt16.self)
            let message = try buffer.readShortString("the abort message")
            self = .abort(AbortReason(AbortReason.Code(rawValue: rawCode) ?? .internalError, message))
        case .credit:
            let increment = try buffer.readWireInteger("the credit", as: UInt32.self)
            guard increment > 0 else { throw TunnelWireError("a credit of zero") }
            self = .credit(increment)
        case .ping:
            self = .ping(try buffer.readWireInteger("the ping value"))
        case .pong:
            self = .pong(try buffer.readWireInteger("the pong value"))
        case .goAway:
            self = .goAway(reason: try buffer.readShortString("the go-away reason"))
        }
        try buffer.expectFullyRead("the frame")
    }

    private static func readHeaders(
        _ buffer: inout ByteBuffer,
        limits: FrameLimits,
        strings: inout RecentStrings,
        keepingBytes: Bool
    ) throws -> HeaderFields {
        let count = Int(try buffer.readWireInteger("the header count", as: UInt16.self))
        guard count <= limits.maximumHeaderCount else {
            throw AbortReason(.headersTooLarge, "\(count) header fields; the limit is \(limits.maximumHeaderCount)")
        }
        if keepingBytes { return try HeaderFields.read(count: count, from: &buffer, limits: limits) }
        var headers: [HeaderField] = []
        headers.reserveCapacity(count)
        var total = 0
        for _ in 0..<count {
            let name = try buffer.readFieldName("a header name", recent: &strings)
            let value = try buffer.readShortString("a header value", recent: &strings)
            total += name.utf8.count + value.utf8.count + 4
            guard total <= limits.maximumHeaderBytes else { throw tooLarge(total, limits) }
            guard !name.isEmpty else { throw TunnelWireError("an empty header name") }
            headers.append(HeaderField(name, value))
        }
        return HeaderFields(headers)
    }

    static func tooLarge(_ bytes: Int, _ limits: FrameLimits) -> AbortReason {
        AbortReason(.headersTooLarge, "a header block of \(bytes) bytes; the limit is \(limits.maximumHeaderBytes)")
    }
}

extension AbortReason: Error {}

import Glibc
import HopGateCore
import HopGateTunnel
import NIOCore
import NIOHTTP1

/// HTTP/1.x responses from a local service, parsed from the connection's bytes into heads of tunnel fields and
/// body parts.
///
/// This is what NIO's `HTTPResponseDecoder` did for the client (llhttp, its callbacks into Swift, and the generic
/// `ByteToMessageHandler` around it): about 18k of the client's 120k instructions a request, where this took about
/// 11k, most of it making the fields' Strings, and about 8k since it writes them as the tunnel's bytes (callgrind).
/// The local service is the client's own and what it answers goes on to the edge, which checks every field again before a
/// browser sees it; this parser still refuses what could be misread (a head that does not parse, a folded line, a
/// length that is not a number, two lengths that differ, a length beside a transfer coding).
///
/// Framing (RFC 9112 §6.3): no body after HEAD, 1xx, 204 and 304; chunked when the last transfer coding is chunked;
/// until the connection closes for any other coding; else `Content-Length`, else until the connection closes. A
/// 101 ends parsing: the bytes after it are the new protocol's (`takeUpgradedBytes`). Other 1xx answers are dropped,
/// as NIO's decoder dropped them, and the real answer follows. A field's value loses the space around it (RFC 9110
/// §5.5; NIO's kept what trailed it).
struct LocalResponseParser {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The largest response head taken: NIO's default limit.
    static let maximumHeadBytes = 80 * 1024

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The line break after a chunk's data.
        case chunkDataEnd
        case trailers
        case untilClose
        case upgraded
        case failed
    }

    private var state = State.head
    /// Bytes read but not yet parsed (a head split across reads; after a 101, the new protocol's).
    private var pending: ByteBuffer?
    /// The methods of the requests sent whose answers have not begun, oldest first.
    private var methods: [HTTPMethod] = []
    private var firstMethod = 0

    /// A request is on its way: its answer comes after those of the requests before it.
    mutating func noteRequest(_ method: HTTPMethod) {
        methods.append(method)
    }

    /// Whether no answer has begun since the last one ended.
    var isBetweenResponses: Bool {
        if case .head = state, pending == nil { return true }
        return false
    }

    /// Parses what was read, appending the parts it completes to `parts`. After a failure every later call fails.
    mutating func parse(_ bytes: ByteBuffer, into parts: inout [Part]) throws {
        var input: ByteBuffer
        if var earlier = pending {
            pending = nil
            var bytes = bytes
            earlier.writeBuffer(&bytes)
            input = earlier
        } else {
            input = bytes
        }
        do {
            try parseInput(&input, into: &parts)
        } catch {
            state = .failed
            pending = nil
            throw error
        }
        if input.readableBytes > 0 { pending = input }
    }

    /// The connection closed: a body that runs until then ends. Returns false when an answer was cut short.
    mutating func connectionClosed(into parts: inout [Part]) -> Bool {
        switch state {
        case .untilClose:
            state = .head
            parts.append(.end)
            return true
        case .head:
            return pending == nil
        case .upgraded:
            return true
        default:
            return false
        }
    }

    /// After a 101: the bytes that came behind it, which belong to the protocol switched to.
    mutating func takeUpgradedBytes() -> ByteBuffer? {
        defer { pending = nil }
        return pending
    }

    private mutating func parseInput(_ input: inout ByteBuffer, into parts: inout [Part]) throws {
        while input.readableBytes > 0 {
            switch state {
            case .failed:
                throw Failure(description: "the response could not be parsed")
            case .upgraded:
                return
            case .head:
                guard let head = try readHead(&input) else { return }
                try begin(head, into: &parts)
            case .fixedBody(let remaining):
                let slice = input.readSlice(length: min(remaining, input.readableBytes))!
                parts.append(.body(slice))
                if remaining == slice.readableBytes {
                    finishResponse(into: &parts)
                } else {
                    state = .fixedBody(remaining: remaining - slice.readableBytes)
                }
            case .untilClose:
                parts.append(.body(input.readSlice(length: input.readableBytes)!))
            case .chunkSize:
                guard let line = try readLine(&input, limit: 1024) else { return }
                let size = try Self.chunkSize(line)
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let slice = input.readSlice(length: min(remaining, input.readableBytes))!
                parts.append(.body(slice))
                state =
                    remaining == slice.readableBytes
                    ? .chunkDataEnd : .chunkData(remaining: remaining - slice.readableBytes)
            case .chunkDataEnd:
                guard let line = try readLine(&input, limit: 2) else { return }
                guard line.readableBytes == 0 else { throw Failure(description: "a chunk is longer than its size") }
                state = .chunkSize
            case .trailers:
                // HopGate forwards no trailers: they are read and dropped, up to the blank line.
                guard let line = try readLine(&input, limit: Self.maximumHeadBytes) else { return }
                if line.readableBytes == 0 { finishResponse(into: &parts) }
            }
        }
    }

    /// A response head as read: the status code, the version, the fields in order, and whether the connection
    /// may serve another request after this response (its Connection options and version). The fields that
    /// describe the local connection (hop-by-hop: Connection, Transfer-Encoding, ...) are left out as the head is
    /// read, but for a 101's, whose Upgrade the exchange may keep: taken out later, they cost a copy of the fields
    /// for every response (about 2k instructions, callgrind).
    struct Head {
        var status: Int
        var version: HTTPVersion
        /// The bytes of the fields as the tunnel carries them (`HeaderFields.build`): no strings are made of a
        /// response's fields on their way to the edge, where making them and copying them out again cost about 2k
        /// instructions a response (callgrind).
        var fields: HeaderFields
        var keepAlive = true
        /// What the fields say of the body and the connection, noted as they were parsed.
        var framing = Framing()
    }

    /// The fields that frame a response, read as the head is parsed rather than in passes over its fields
    /// afterwards: three such passes, each copying every field, cost about 4k instructions a response (callgrind).
    struct Framing {
        var connection = ConnectionOptions()
        /// The Content-Length, when every one the head has is the same number.
        var length: Int?
        /// Why the Content-Length fields give no length, when one is not a number or two differ: an error only
        /// for a response that has a body to frame.
        var lengthProblem: String?
        /// Whether the last coding of the Transfer-Encoding fields is chunked; nil when they list none.
        var lastCodingIsChunked: Bool?

        /// Notes a field when it frames the response. False when it describes the local connection (hop-by-hop)
        /// and so is not forwarded.
        mutating func note(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
            switch name.count {
            case 10 where equalsLowercaseASCII(name, "connection"):
                connection.read(value)
                return false
            case 14 where equalsLowercaseASCII(name, "content-length"):
                noteLength(value)
                return true
            case 17 where equalsLowercaseASCII(name, "transfer-encoding"):
                if let coding = lastTransferCoding(value) {
                    lastCodingIsChunked = equalsLowercaseASCII(coding, "chunked")
                }
                return false
            default:
                return !isHopByHopFieldName(name)
            }
        }

        private mutating func noteLength(_ value: UnsafeRawBufferPointer) {
            guard lengthProblem == nil else { return }
            // The value comes trimmed (`field`); digits only, and few enough to fit an Int.
            guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                lengthProblem = "the Content-Length \(String(decoding: value, as: UTF8.self)) is not a number"
                return
            }
            let number = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard length == nil || length == number else {
                lengthProblem = "the response has two different lengths"
                return
            }
            length = number
        }
    }

    /// What the parser makes of the bytes, in order: each response is a head, body parts, and an end.
    enum Part {
        case head(Head)
        case body(ByteBuffer)
        case end
    }

    /// A status line and fields, or nil while the blank line after them has not arrived.
    private mutating func readHead(_ input: inout ByteBuffer) throws -> Head? {
        guard let end = Self.endOfHead(in: input) else {
            if input.readableBytes > Self.maximumHeadBytes {
                throw Failure(description: "the response head is larger than \(Self.maximumHeadBytes) bytes")
            }
            return nil
        }
        guard end <= Self.maximumHeadBytes else {
            throw Failure(description: "the response head is larger than \(Self.maximumHeadBytes) bytes")
        }
        let head = try input.withUnsafeReadableBytes { bytes in
            try Self.parseHead(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        }
        input.moveReaderIndex(forwardBy: end)
        return head
    }

    /// Emits a head and sets up the reading of its body.
    private mutating func begin(_ head: consuming Head, into parts: inout [Part]) throws {
        var response = head
        let framing = response.framing
        response.keepAlive = framing.connection.keepsAlive(version: response.version)
        if response.status == 101 {
            parts.append(.head(response))
            parts.append(.end)
            popMethod()
            state = .upgraded
            return
        }
        if (100..<200).contains(response.status) {
            // Informational (100 Continue, 103 Early Hints): dropped, as NIO's decoder did by default; the answer
            // itself is still to come.
            return
        }
        let method = methods.count > firstMethod ? methods[firstMethod] : .GET
        if method == .HEAD || response.status == 204 || response.status == 304 {
            parts.append(.head(response))
            return finishResponse(into: &parts)
        }
        // The framing is settled before the head goes, so that a refused answer sends no part at all.
        if let problem = framing.lengthProblem { throw Failure(description: problem) }
        if let chunked = framing.lastCodingIsChunked {
            guard framing.length == nil else {
                throw Failure(description: "the response has a length and a transfer coding")
            }
            parts.append(.head(response))
            state = chunked ? .chunkSize : .untilClose
        } else if let length = framing.length {
            parts.append(.head(response))
            if length == 0 { return finishResponse(into: &parts) }
            state = .fixedBody(remaining: length)
        } else {
            parts.append(.head(response))
            state = .untilClose
        }
    }

    private mutating func finishResponse(into parts: inout [Part]) {
        parts.append(.end)
        popMethod()
        state = .head
    }

    private mutating func popMethod() {
        guard methods.count > firstMethod else { return }
        firstMethod += 1
        if firstMethod == methods.count {
            methods.removeAll(keepingCapacity: true)
            firstMethod = 0
        }
    }

    /// One line without its line break (CRLF, or LF alone), or nil while it has not all arrived.
    private func readLine(_ input: inout ByteBuffer, limit: Int) throws -> ByteBuffer? {
        guard let line = Self.takeLine(&input) else {
            if input.readableBytes > limit { throw Failure(description: "a line of the response is too long") }
            return nil
        }
        guard line.readableBytes <= limit else { throw Failure(description: "a line of the response is too long") }
        return line
    }

    /// The offset just past the blank line that ends a head, if it has arrived.
    static func endOfHead(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            var lineStart = 0
            while let newline = newline(in: bytes, from: lineStart) {
                let length = newline - lineStart
                // An empty line, or one that is only a CR, after the status line: the head ends here.
                if lineStart > 0 && (length == 0 || (length == 1 && bytes[lineStart] == UInt8(ascii: "\r"))) {
                    return newline + 1
                }
                lineStart = newline + 1
            }
            return nil
        }
    }

    /// The index of the next line feed in `bytes` at or after `start`. `memchr` compares many bytes at a time,
    /// where a loop over a buffer pointer costs about a dozen instructions a byte.
    static func newline(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// Takes one line off the front of `buffer`, without its line break.
    static func takeLine(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        let found = buffer.withUnsafeReadableBytes { bytes -> (length: Int, hasCR: Bool)? in
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            return (newline, newline > 0 && bytes[newline - 1] == UInt8(ascii: "\r"))
        }
        guard let found else { return nil }
        let line = buffer.readSlice(length: found.hasCR ? found.length - 1 : found.length)!
        buffer.moveReaderIndex(forwardBy: found.hasCR ? 2 : 1)
        return line
    }

    /// The status line and the fields of a whole head (`bytes` ends with its blank line), in one pass over the
    /// bytes in place: a pass through `ByteBufferView` costs several instructions a byte.
    static func parseHead(_ bytes: UnsafeRawBufferPointer) throws -> Head {
        var start = 0
        /// The next line's range, without its line break.
        func nextLine() -> Range<Int>? {
            guard let newline = newline(in: bytes, from: start) else { return nil }
            var end = newline
            if end > start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            defer { start = newline + 1 }
            return start..<end
        }
        guard let statusLine = nextLine() else { throw Failure(description: "the response has no status line") }
        let (version, status) = try Self.statusLine(UnsafeRawBufferPointer(rebasing: bytes[statusLine]))
        var framing = Framing()
        // A 101's fields all go on: the exchange may keep its Upgrade.
        let keepsAll = status == 101
        // Room for the fields at once: on the wire a field takes its name and value and four bytes, in the head at
        // least two more than its name and value ("a:\n", with an empty value, is three bytes), so no more than
        // the head's bytes and two for every three of them.
        let fields = try HeaderFields.build(capacity: bytes.count + (bytes.count / 3 + 1) * 2) { fields in
            while let line = nextLine(), !line.isEmpty {
                let (name, value) = try Self.field(UnsafeRawBufferPointer(rebasing: bytes[line]))
                guard framing.note(name: name, value: value) || keepsAll else { continue }
                do {
                    try fields.append(name: name, value: value)
                } catch {
                    throw Failure(description: "\(error)")
                }
            }
        }
        return Head(status: status, version: version, fields: fields, framing: framing)
    }

    /// `HTTP/1.1 200 OK`: the version and the status code (the reason phrase is not used).
    static func statusLine(_ line: UnsafeRawBufferPointer) throws -> (HTTPVersion, Int) {
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        guard line.count >= 12, line[0..<7].elementsEqual("HTTP/1.".utf8),
            line[7] == UInt8(ascii: "0") || line[7] == UInt8(ascii: "1"), line[8] == UInt8(ascii: " "),
            isDigit(line[9]), isDigit(line[10]), isDigit(line[11]), line.count == 12 || line[12] == UInt8(ascii: " ")
        else {
            let text = String(decoding: line.prefix(80), as: UTF8.self)
            throw Failure(description: "the status line \(text.debugDescription) does not parse")
        }
        let status = Int(line[9] - 0x30) * 100 + Int(line[10] - 0x30) * 10 + Int(line[11] - 0x30)
        guard status >= 100 else { throw Failure(description: "the status \(status) is not one") }
        return (line[7] == UInt8(ascii: "1") ? .http1_1 : .http1_0, status)
    }

    /// `Name: value`, with the space around the value taken off: the name and the value, in place.
    static func field(
        _ line: UnsafeRawBufferPointer
    ) throws -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard let base = line.baseAddress, let found = memchr(base, Int32(UInt8(ascii: ":")), line.count),
            case let colon = base.distance(to: UnsafeRawPointer(found)), colon > 0
        else {
            throw Failure(description: "a header line has no name: \(String(decoding: line.prefix(80), as: UTF8.self))")
        }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        // A name must be a token: this also refuses a folded line (one that starts with a space or tab).
        guard isHTTPToken(name) else {
            throw Failure(
                description: "a header name is not a token: \(String(decoding: name.prefix(80), as: UTF8.self))"
            )
        }
        var valueStart = colon + 1
        var valueEnd = line.count
        while valueStart < valueEnd, isHTTPWhitespaceByte(line[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart, isHTTPWhitespaceByte(line[valueEnd - 1]) { valueEnd -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd])
        guard isFieldValue(value) else {
            throw Failure(description: "the value of \(String(decoding: name, as: UTF8.self)) has a control character")
        }
        return (name, value)
    }

    /// A chunk-size line's size: hexadecimal digits, then optionally extensions (dropped).
    static func chunkSize(_ line: ByteBuffer) throws -> Int {
        var size = 0
        var digits = 0
        for byte in line.readableBytesView {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
            case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                guard digits > 0 else { throw Failure(description: "a chunk has no size") }
                return size
            default:
                throw Failure(description: "a chunk size is not hexadecimal")
            }
            digits += 1
            guard digits <= 15 else { throw Failure(description: "a chunk is too large") }
            size = size << 4 | value
        }
        guard digits > 0 else { throw Failure(description: "a chunk has no size") }
        return size
    }
}

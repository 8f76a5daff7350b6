#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The header field names that nearly every request and response carries, each made once as a `String`. A name
/// read off the wire that is one of them, byte for byte in the case it came in, becomes that string: no UTF-8
/// validation, no copy, no allocation, and no reference counting (a literal's storage is immortal). Making every
/// name anew cost about 300 instructions a field at each end of the tunnel (callgrind). Go's net/textproto keeps
/// such a table for the same reason.
///
/// Each name is here as browsers and servers write it and in lowercase, as HTTP/2 and some frameworks send it.
public enum CommonFieldNames {
    /// `bytes` as one of the common names, or nil when they are not one.
    @inlinable
    public static func name(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count >= 2, bytes.count <= Table.longest else { return nil }
        return table.lookUp(bytes)
    }

    public static let names: [String] = [
        // Requests
        "Host", "host", "User-Agent", "user-agent", "Accept", "accept", "Accept-Encoding", "accept-encoding",
        "Accept-Language", "accept-language", "Authorization", "authorization", "Cookie", "cookie",
        "Referer", "referer", "Origin", "origin", "Range", "range", "If-None-Match", "if-none-match",
        "If-Modified-Since", "if-modified-since", "Upgrade-Insecure-Requests", "upgrade-insecure-requests",
        "Sec-Fetch-Dest", "sec-fetch-dest", "Sec-Fetch-Mode", "sec-fetch-mode", "Sec-Fetch-Site", "sec-fetch-site",
        "Sec-Fetch-User", "sec-fetch-user", "Sec-WebSocket-Key", "sec-websocket-key", "Sec-WebSocket-Version",
        "sec-websocket-version", "X-Requested-With", "x-requested-with", "Pragma", "pragma",
        // What the edge adds to every request (ProxyHeaders)
        "X-Forwarded-For", "x-forwarded-for", "X-Forwarded-Proto", "x-forwarded-proto", "X-Forwarded-Host",
        "x-forwarded-host", "Forwarded", "forwarded", "X-Real-IP", "x-real-ip",
        // Both
        "Content-Type", "content-type", "Content-Length", "content-length", "Content-Encoding", "content-encoding",
        "Transfer-Encoding", "transfer-encoding", "Connection", "connection", "Keep-Alive", "keep-alive",
        "Upgrade", "upgrade", "Cache-Control", "cache-control", "Via", "via",
        // Responses
        "Server", "server", "Date", "date", "Last-Modified", "last-modified", "ETag", "Etag", "etag",
        "Accept-Ranges", "accept-ranges", "Content-Range", "content-range", "Expires", "expires", "Vary", "vary",
        "Set-Cookie", "set-cookie", "Location", "location", "Age", "age", "X-Powered-By", "x-powered-by",
        "Content-Disposition", "content-disposition", "Strict-Transport-Security", "strict-transport-security",
        "X-Content-Type-Options", "x-content-type-options", "X-Frame-Options", "x-frame-options",
        "Content-Security-Policy", "content-security-policy", "Referrer-Policy", "referrer-policy",
        "Access-Control-Allow-Origin", "access-control-allow-origin", "Sec-WebSocket-Accept", "sec-websocket-accept",
    ]

    @usableFromInline
    static let table = Table(names)

    /// An open-addressing hash table of the names: a lookup hashes the length and three of the bytes, then
    /// compares at most the few names in that run of slots with the bytes.
    @usableFromInline
    struct Table: Sendable {
        @usableFromInline
        static let longest = 32
        /// A power of two, several times the number of names, so that runs stay short.
        @usableFromInline
        static let size = 512
        @usableFromInline
        let slots: [String?]

        init(_ names: [String]) {
            var slots = [String?](repeating: nil, count: Self.size)
            for name in names {
                precondition((2...Self.longest).contains(name.utf8.count), "\(name) is outside the table's lengths")
                var index = name.utf8.withContiguousStorageIfAvailable { Self.hash(UnsafeRawBufferPointer($0)) }!
                while let taken = slots[index] {
                    precondition(taken != name, "\(name) is in the table twice")
                    index = (index + 1) & (Self.size - 1)
                }
                slots[index] = name
            }
            self.slots = slots
        }

        @inlinable
        @inline(__always)
        static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
            let count = bytes.count
            let mixed =
                count &* 0x9E37 ^ Int(bytes[0]) &* 0x3B ^ Int(bytes[count - 1]) &* 0x1F1 ^ Int(bytes[count / 2])
                &* 0x61
            return (mixed ^ mixed >> 9) & (size - 1)
        }

        @inlinable
        func lookUp(_ bytes: UnsafeRawBufferPointer) -> String? {
            var index = Self.hash(bytes)
            while let candidate = slots[index] {
                let same = candidate.utf8.withContiguousStorageIfAvailable { stored in
                    stored.count == bytes.count && memcmp(stored.baseAddress!, bytes.baseAddress!, bytes.count) == 0
                }
                if same == true { return candidate }
                index = (index + 1) & (Self.size - 1)
            }
            return nil
        }
    }
}

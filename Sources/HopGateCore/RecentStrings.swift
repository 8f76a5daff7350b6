#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The strings a connection or a session made of recent heads' bytes, found again by those bytes. Heads repeat
/// most of their values: the same Server, Content-Type and Cache-Control, the Date for a second, the host and the
/// edge's X-Forwarded-* fields for every request of one browser. A value found here is not validated, copied or
/// allocated again: a lookup costs a few dozen instructions, where making a string cost about 300 (callgrind).
///
/// Slots each holding the last string whose bytes hashed to it: 256 of them, so that the 20 or so strings of a
/// request and its response seldom share one (with 64, a quarter of the lookups missed for that). Values over
/// `longest` bytes are not kept: cookies and tokens rarely repeat. One owner, one thread: a value type to keep in
/// a handler or a session, of 4 KiB and the strings it holds once it is used.
public struct RecentStrings {
    @usableFromInline
    static let slots = 256
    @usableFromInline
    static let longest = 96
    /// Empty until the first lookup: an edge holds one for each of its sessions, most of them idle.
    @usableFromInline
    var strings: [String?] = []

    public init() {}

    /// The string of `bytes`, which must be valid UTF-8: the kept one when it has the same bytes, else a new one
    /// (kept from now on in its slot).
    @inlinable
    public mutating func string(_ bytes: UnsafeRawBufferPointer) -> String {
        guard bytes.count <= Self.longest, bytes.count > 0 else { return String(decoding: bytes, as: UTF8.self) }
        if strings.isEmpty { strings = Array(repeating: nil, count: Self.slots) }
        let slot = Self.slot(bytes)
        if let kept = strings[slot] {
            let same = kept.utf8.withContiguousStorageIfAvailable { stored in
                stored.count == bytes.count && memcmp(stored.baseAddress!, bytes.baseAddress!, bytes.count) == 0
            }
            if same == true { return kept }
        }
        let made = String(decoding: bytes, as: UTF8.self)
        strings[slot] = made
        return made
    }

    /// A hash of the length and the first and last eight bytes (fewer when shorter): values that differ only in
    /// the middle share a slot, and take turns in it.
    @inlinable
    @inline(__always)
    static func slot(_ bytes: UnsafeRawBufferPointer) -> Int {
        let count = bytes.count
        var mixed = UInt64(count) &* 0x9E37_79B9_7F4A_7C15
        if count >= 8 {
            mixed ^= bytes.loadUnaligned(as: UInt64.self) &* 0xBF58_476D_1CE4_E5B9
            mixed ^= bytes.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) &* 0x94D0_49BB_1331_11EB
        } else {
            for byte in bytes { mixed = (mixed ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        return Int(truncatingIfNeeded: mixed >> 56) & (slots - 1)
    }
}

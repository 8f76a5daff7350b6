/// Copies `string`'s UTF-8 into `out` at `offset` and moves `offset` past it: for encoders that size a buffer once and
/// fill it in one pass. A function of its own rather than a nested one: a nested one captures the offset, and every
/// access to a captured variable is checked for exclusivity at run time. Inlinable, since it runs for every string of
/// every head the tunnel and the client encode.
@inlinable
public func copyUTF8(of string: String, into out: UnsafeMutableRawBufferPointer, at offset: inout Int) {
    let start = offset
    // In place when contiguous (nearly always): `withUTF8` needs a copy of the string, a retain and a release.
    let copied = string.utf8.withContiguousStorageIfAvailable { bytes in
        UnsafeMutableRawBufferPointer(rebasing: out[start..<(start + bytes.count)]).copyMemory(
            from: UnsafeRawBufferPointer(bytes)
        )
        return bytes.count
    }
    if let copied {
        offset += copied
        return
    }
    var string = string
    let count = string.withUTF8 { bytes in
        UnsafeMutableRawBufferPointer(rebasing: out[start..<(start + bytes.count)]).copyMemory(
            from: UnsafeRawBufferPointer(bytes)
        )
        return bytes.count
    }
    offset += count
}

/// Copies `bytes` into `out` at `offset` and moves `offset` past them: for encoders that write fields read as bytes.
@inlinable
public func copyBytes(of bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, at offset: inout Int) {
    UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + bytes.count)]).copyMemory(from: bytes)
    offset += bytes.count
}

/// Calls `body` with the UTF-8 of two strings in place, such as a header field's name and value: for code that
/// reads fields as bytes whether they came as strings or as bytes.
@inlinable
public func withUTF8(
    of first: String,
    _ second: String,
    _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
) rethrows {
    // In place when both have their bytes contiguous (nearly always): `withUTF8` needs copies of the strings to
    // call a mutating method on, a retain and a release each.
    let done = try first.utf8.withContiguousStorageIfAvailable { first in
        try second.utf8.withContiguousStorageIfAvailable { second in
            try body(UnsafeRawBufferPointer(first), UnsafeRawBufferPointer(second))
        }
    }
    if case .some(.some) = done { return }
    var first = first
    var second = second
    try first.withUTF8 { first in
        try second.withUTF8 { second in try body(UnsafeRawBufferPointer(first), UnsafeRawBufferPointer(second)) }
    }
}

/// Writes two bytes, such as a separator, into `out` at `offset` and moves `offset` past them: for the same
/// encoders, where copying a two-byte string costs a hundred instructions (callgrind).
@inlinable
public func copyBytes(_ first: UInt8, _ second: UInt8, into out: UnsafeMutableRawBufferPointer, at offset: inout Int) {
    out[offset] = first
    out[offset + 1] = second
    offset += 2
}

extension String {
    /// `parts` one after the other, in one allocation: each `+` or interpolated part costs an append of several
    /// hundred instructions (a header the edge builds for every request took five, callgrind).
    public init(concatenating parts: String...) {
        var count = 0
        for part in parts { count += part.utf8.count }
        self.init(unsafeUninitializedCapacity: count) { out in
            let raw = UnsafeMutableRawBufferPointer(out)
            var at = 0
            for part in parts { copyUTF8(of: part, into: raw, at: &at) }
            return at
        }
    }
}

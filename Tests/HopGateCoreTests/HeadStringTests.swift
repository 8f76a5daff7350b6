import HopGateCore
import Testing

/// The strings made of head bytes without making them anew: the common names, the recent strings, and the
/// eight-at-a-time check of field values.
@Suite struct HeadStringTests {
    @Test func everyCommonNameIsFoundAsItselfAndNothingElseIs() {
        for name in CommonFieldNames.names {
            var bytes = Array(name.utf8)
            let found = bytes.withUnsafeBytes { CommonFieldNames.name($0) }
            #expect(found == name)
            // One byte changed anywhere, or one more or fewer, and it is not that name.
            for index in bytes.indices {
                let original = bytes[index]
                bytes[index] = original ^ 0x01
                let changed = bytes.withUnsafeBytes { CommonFieldNames.name($0) }
                #expect(changed != name, "\(name) with byte \(index) changed")
                if let changed { #expect(Array(changed.utf8) == bytes) }
                bytes[index] = original
            }
            let longer = (bytes + [UInt8(ascii: "x")]).withUnsafeBytes { CommonFieldNames.name($0) }
            #expect(longer == nil || longer == name + "x")
            let shorter = bytes.dropLast().withUnsafeBytes { CommonFieldNames.name($0) }
            #expect(shorter != name)
        }
        // Case counts: the table has the usual spelling and lowercase, not every mix.
        for odd in ["CONTENT-TYPE", "content-Type", "X-Custom", "", "A", String(repeating: "a", count: 40)] {
            #expect(Array(odd.utf8).withUnsafeBytes { CommonFieldNames.name($0) } == nil, "\(odd)")
        }
    }

    @Test func aRecentStringIsFoundByItsBytesAndADifferentOneIsMade() {
        var recent = RecentStrings()
        func string(_ text: String) -> String { Array(text.utf8).withUnsafeBytes { recent.string($0) } }
        let values = [
            "nginx/1.22.1", "Wed, 02 Dec 2026 17:01:52 GMT", "Wed, 02 Dec 2026 17:01:53 GMT", "bytes", "1",
            "application/octet-stream", "text/html; charset=utf-8", "", "é", String(repeating: "v", count: 96),
            String(repeating: "v", count: 97), "\"6571c8a0-400\"", "a", "b", "ab", "ba",
        ]
        for _ in 0..<3 {
            for value in values { #expect(string(value) == value) }
        }
        // More values than slots: each still comes back as its own bytes, whatever was evicted.
        for round in 0..<2 {
            for index in 0..<1000 { #expect(string("value-\(index)") == "value-\(index)", "round \(round)") }
        }
        // Strings that differ only in the middle share a slot and take turns in it.
        let left = "aaaaaaaa-left-zzzzzzzz"
        let right = "aaaaaaaa-rght-zzzzzzzz"
        for _ in 0..<3 {
            #expect(string(left) == left)
            #expect(string(right) == right)
        }
    }

    /// The word-at-a-time check against the byte one: every byte value at every place of values of 1 to 19
    /// bytes, so that each lands in a whole word and in the tail, beside tabs and bytes over 0x7F.
    @Test func fieldValuesAreCheckedEightBytesAtATimeAsByteByByte() {
        for length in 1...19 {
            for place in 0..<length {
                for byte in UInt8.min...UInt8.max {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    if length > 2 { bytes[(place + 1) % length] = place % 2 == 0 ? 0x09 : 0xC3 }
                    bytes[place] = byte
                    let expected = bytes.allSatisfy(isFieldValueByte)
                    #expect(bytes.withUnsafeBytes { isFieldValue($0) } == expected, "\(bytes)")
                }
            }
        }
        #expect([UInt8]().withUnsafeBytes { isFieldValue($0) })
    }
}

import HopGateCore
import Testing

@Suite struct HexTests {
    @Test func encodesLowercaseTwoDigitsAByteAndDecodesBack() {
        #expect(Hex.encode([0x00, 0x0a, 0xab, 0xff]) == "000aabff")
        #expect(Hex.encode([UInt8]()) == "")
        #expect(Hex.decode("000aABff") == [0x00, 0x0a, 0xab, 0xff])
        let bytes = (0...255).map { UInt8($0) }
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
    }

    @Test func refusesOddLengthsAndNonHexDigits() {
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.decode("+1") == nil)
    }
}

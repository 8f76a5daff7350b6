import HopGateCore
import Testing

@Suite struct TextHelperTests {
    @Test func directoryPartIsDirnameButEmptyForABareName() {
        #expect(directoryPart(of: "/var/lib/hopgate/hopgate.db") == "/var/lib/hopgate")
        #expect(directoryPart(of: "data/hopgate.db") == "data")
        #expect(directoryPart(of: "data//hopgate.db") == "data")
        #expect(directoryPart(of: "data/sub/") == "data")
        #expect(directoryPart(of: "/hopgate.db") == "/")
        #expect(directoryPart(of: "hopgate.db") == "")
        #expect(directoryPart(of: "") == "")
    }

    @Test func trimsWhitespaceOrChosenCharacters() {
        #expect(" \t value \r\n".trimmingWhitespace() == "value")
        #expect("a b".trimmingWhitespace() == "a b")
        #expect("   ".trimmingWhitespace() == "")
        #expect("[::1]".trimming(while: { $0 == "[" || $0 == "]" }) == "::1")
    }
}

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

    @Test func concatenatingJoinsPartsOfAnyLengthAndScript() {
        #expect(
            String(concatenating: "for=", "192.0.2.1", ";host=\"", "app.example.com", "\"")
                == "for=192.0.2.1;host=\"app.example.com\""
        )
        #expect(String(concatenating: "", "", "") == "")
        #expect(
            String(concatenating: "é", "日本", String(repeating: "x", count: 100)) == "é日本"
                + String(repeating: "x", count: 100)
        )
    }

    @Test func trimsWhitespaceOrChosenCharacters() {
        #expect(" \t value \r\n".trimmingWhitespace() == "value")
        #expect("a b".trimmingWhitespace() == "a b")
        #expect("   ".trimmingWhitespace() == "")
        #expect("[::1]".trimming(while: { $0 == "[" || $0 == "]" }) == "::1")
    }
}

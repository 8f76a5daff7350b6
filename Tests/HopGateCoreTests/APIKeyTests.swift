import HopGateCore
import Testing

@Suite struct APIKeyTests {
    @Test func generatesSixtyFourLowercaseHexCharacters() {
        let keys = (0..<200).map { _ in APIKey.generate().secret }
        for key in keys {
            #expect(key.count == 64)
            #expect(key.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        }
        #expect(Set(keys).count == keys.count)
    }

    @Test func usesEveryHexDigit() {
        // A generator stuck on some digits (a formatting bug, say) would leave some out across 200 keys.
        let digits = Set((0..<200).flatMap { _ in APIKey.generate().secret })
        #expect(digits == Set("0123456789abcdef"))
    }

    @Test func acceptsPastedKeys() throws {
        let key = APIKey.generate()
        #expect(try APIKey(validating: "  \(key.secret.uppercased())\n") == key)
    }

    @Test(arguments: ["", "abc", String(repeating: "g", count: 64), String(repeating: "a", count: 65)])
    func refusesMalformedKeys(text: String) {
        #expect(throws: HopGateError(.invalidInput, "")) { try APIKey(validating: text) }
    }

    @Test func neverDescribesItselfWhole() throws {
        let key = try APIKey(validating: "0123" + String(repeating: "a", count: 56) + "ffff")
        #expect("\(key)" == "0123...ffff")
        #expect(!"\(key)".contains(key.secret))
    }
}

import HopGateCore
import Testing

@Suite struct DomainNameTests {
    @Test(arguments: [
        ("example.com", "example.com"),
        ("Example.COM.", "example.com"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("123.example.com", "123.example.com"),
    ])
    func acceptsAndNormalises(input: String, expected: String) throws {
        #expect(try DomainName(validating: input).value == expected)
    }

    @Test func acceptsTheLongestNames() throws {
        let label = String(repeating: "a", count: 63)
        let name = [label, label, label, String(repeating: "b", count: 61)].joined(separator: ".")
        #expect(name.count == 253)
        #expect(try DomainName(validating: name).value == name)
    }

    @Test(arguments: [
        ("-bad.com", "starts or ends with a hyphen"),
        ("bad-.com", "starts or ends with a hyphen"),
        ("a..b", "empty label"),
        (".example.com", "empty label"),
        (String(repeating: "a", count: 296) + ".com", "the limit is 253"),
        (String(repeating: "a", count: 64) + ".com", "the limit is 63"),
        ("exa mple.com", "a space is not allowed"),
        ("under_score.com", "'_' is not allowed"),
        ("localhost", "at least two labels"),
        ("bücher.de", "non-ASCII"),
        ("例え.jp", "non-ASCII"),
        ("10.0.0.1", "IP addresses"),
        ("", "empty"),
    ])
    func refusesWithAReason(input: String, reason: String) {
        #expect {
            try DomainName(validating: input)
        } throws: { error in
            guard let error = error as? HopGateError else { return false }
            return error.code == .invalidInput && error.message.contains(reason)
        }
    }
}

@Suite struct MemoTests {
    @Test func acceptsOneLineUpToTheLimit() throws {
        #expect(try Memo(validating: "staging API, owner: ops ✓").value == "staging API, owner: ops ✓")
        #expect(try Memo(validating: String(repeating: "é", count: Memo.maximumLength)).value.count == 256)
    }

    @Test(arguments: [String(repeating: "x", count: 257), "two\nlines", "tab\there", "esc\u{1b}[31m"])
    func refuses(input: String) {
        #expect(throws: HopGateError(.invalidInput, "")) { try Memo(validating: input) }
    }
}

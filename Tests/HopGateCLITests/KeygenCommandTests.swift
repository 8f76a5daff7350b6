import Foundation
import HopGateCore
import Testing

@Suite struct KeygenCommandTests {
    @Test func printsAFreshKey() async throws {
        let first = try await hopgate(["keygen"])
        let second = try await hopgate(["keygen"])
        #expect(first.status == 0)
        let key = first.standardOutput.trimmingCharacters(in: .newlines)
        #expect(try APIKey(validating: key).secret == key)
        #expect(first.standardOutput != second.standardOutput)
    }

    @Test func thePrintedHashVerifiesThePrintedKeyAndNoOther() async throws {
        let output = try await hopgate(["keygen", "--hash"])
        #expect(output.status == 0)
        let lines = output.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let key = String(try #require(lines.first?.split(separator: " ").last))
        let hash = String(try #require(lines.last?.split(separator: " ").last))
        #expect(lines[0].hasPrefix("key: ") && lines[1].hasPrefix("hash: "))
        #expect(try KeyHasher.verify(key, against: hash))
        #expect(try !KeyHasher.verify(APIKey.generate().secret, against: hash))
        #expect(try !KeyHasher.verify(String(key.reversed()), against: hash))
    }

    @Test func printsJSON() async throws {
        let plain = try parseJSON(await hopgate(["keygen", "--json"]))
        #expect((plain["key"] as? String)?.count == 64)
        #expect(plain["hash"] == nil || plain["hash"] is NSNull)
        let hashed = try parseJSON(await hopgate(["keygen", "--json", "--hash"]))
        let key = try #require(hashed["key"] as? String)
        #expect(try KeyHasher.verify(key, against: try #require(hashed["hash"] as? String)))
    }
}

import Crypto
import Foundation
import Testing

@testable import HopGateACME

@Suite struct ACMEAccountKeyTests {
    @Test func signsAFlattenedJWSThatVerifiesWithTheAccountKey() throws {
        let key = ACMEAccountKey()
        let body = try key.sign(
            payload: Data(#"{"a":1}"#.utf8),
            url: "https://ca.example/new-order",
            nonce: "n0nce",
            signer: .account("https://ca.example/acct/7")
        )
        let object = try #require(try JSONSerialization.jsonObject(with: body) as? [String: String])
        let protected = try #require(object["protected"])
        let payload = try #require(object["payload"])
        let signature = try #require(object["signature"].flatMap(Base64URL.decode))
        #expect(!protected.contains("=") && !payload.contains("="))

        let headerBytes = try #require(Base64URL.decode(protected))
        let header = try #require(try JSONSerialization.jsonObject(with: headerBytes) as? [String: String])
        #expect(
            header == [
                "alg": "ES256", "kid": "https://ca.example/acct/7", "nonce": "n0nce",
                "url": "https://ca.example/new-order",
            ]
        )
        #expect(Base64URL.decode(payload) == Data(#"{"a":1}"#.utf8))

        let publicKey = try P256.Signing.PublicKey(pemRepresentation: key.privateKey.publicKey.pemRepresentation)
        let ecdsa = try P256.Signing.ECDSASignature(rawRepresentation: signature)
        #expect(publicKey.isValidSignature(ecdsa, for: Data("\(protected).\(payload)".utf8)))
        #expect(!publicKey.isValidSignature(ecdsa, for: Data("\(protected).x\(payload)".utf8)))
    }

    @Test func newAccountCarriesTheJWKAndPostAsGetHasAnEmptyPayload() throws {
        let key = ACMEAccountKey()
        let body = try key.sign(payload: nil, url: "https://ca.example/new-acct", nonce: "n", signer: .jwk)
        let object = try #require(try JSONSerialization.jsonObject(with: body) as? [String: String])
        #expect(object["payload"] == "")
        let headerBytes = try #require(object["protected"].flatMap(Base64URL.decode))
        let header = try #require(try JSONSerialization.jsonObject(with: headerBytes) as? [String: Any])
        #expect(header["kid"] == nil)
        let jwk = try #require(header["jwk"] as? [String: String])
        #expect(jwk["kty"] == "EC" && jwk["crv"] == "P-256")
        let point = key.privateKey.publicKey.x963Representation
        #expect(Base64URL.decode(try #require(jwk["x"])) == point.dropFirst().prefix(32))
        #expect(Base64URL.decode(try #require(jwk["y"])) == point.suffix(32))
    }

    @Test func thumbprintIsTheSHA256OfTheCanonicalJWK() throws {
        let key = ACMEAccountKey()
        let point = key.privateKey.publicKey.x963Representation
        let canonical =
            #"{"crv":"P-256","kty":"EC","x":""# + Base64URL.encode(point.dropFirst().prefix(32)) + #"","y":""#
            + Base64URL.encode(point.suffix(32)) + #""}"#
        #expect(key.thumbprint == Base64URL.encode(SHA256.hash(data: Data(canonical.utf8))))
        #expect(key.thumbprint.count == 43)
        #expect(key.keyAuthorization(token: "tok") == "tok.\(key.thumbprint)")
        // The key survives a trip through the store's PEM.
        #expect(try ACMEAccountKey(pem: key.pem).thumbprint == key.thumbprint)
    }

    @Test func base64URLRoundTripsEveryLength() {
        for length in 0..<10 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 77 + 250) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("+") && !text.contains("/") && !text.contains("="))
            #expect(Base64URL.decode(text) == Data(bytes))
        }
    }
}

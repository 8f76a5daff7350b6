import Foundation
import HopGateCore
import Testing

@Suite struct ResumptionTokenTests {
    let secret = Array(repeating: UInt8(7), count: 32)
    let domain = try! DomainName(validating: "app.example.com")
    let keyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"

    @Test func aTokenCarriesItsClaims() throws {
        let expiry = Date(timeIntervalSinceNow: 3600)
        let token = ResumptionToken.issue(domain: domain, keyHash: keyHash, expiry: expiry, secret: secret)
        let claims = try ResumptionToken.verify(token, secret: secret)
        #expect(claims.domain == "app.example.com")
        #expect(abs(claims.expiry.timeIntervalSince(expiry)) < 1)
        #expect(claims.keyHashDigest == ResumptionToken.keyHashDigest(of: keyHash))
        #expect(claims.keyHashDigest != ResumptionToken.keyHashDigest(of: keyHash + "x"), "a rotated key changes it")
        #expect(token.count < 120, "it must fit a Hello beside everything else")
    }

    @Test func anotherSecretOrAnyChangedByteIsRefused() throws {
        let token = ResumptionToken.issue(
            domain: domain,
            keyHash: keyHash,
            expiry: Date(timeIntervalSinceNow: 60),
            secret: secret
        )
        #expect(throws: ResumptionToken.Failure.badSignature) {
            try ResumptionToken.verify(token, secret: Array(repeating: 8, count: 32))
        }
        for index in token.indices {
            var tampered = token
            tampered[index] ^= 0x01
            #expect(throws: ResumptionToken.Failure.self) { try ResumptionToken.verify(tampered, secret: secret) }
        }
    }

    @Test func anExpiredTokenIsRefused() {
        let token = ResumptionToken.issue(
            domain: domain,
            keyHash: keyHash,
            expiry: Date(timeIntervalSinceNow: -1),
            secret: secret
        )
        #expect(throws: ResumptionToken.Failure.expired) { try ResumptionToken.verify(token, secret: secret) }
    }

    @Test(arguments: [[UInt8](), [1], Array(repeating: UInt8(1), count: 60), Array(repeating: UInt8(2), count: 80)])
    func garbageIsMalformedOrBadlySigned(token: [UInt8]) {
        #expect(throws: ResumptionToken.Failure.self) { try ResumptionToken.verify(token, secret: secret) }
    }
}

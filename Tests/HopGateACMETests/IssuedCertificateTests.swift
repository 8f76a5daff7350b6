import Crypto
import Foundation
import HopGateStore
import SwiftASN1
import Testing
import X509

@testable import HopGateACME

@Suite struct IssuedCertificateTests {
    @Test func theCSRNamesTheDomainAndIsSignedByTheNewKey() throws {
        let key = P256.Signing.PrivateKey()
        let der = try IssuedCertificate.signingRequest(for: "app.hopgate.test", key: key)
        let request = try CertificateSigningRequest(derEncoded: der)
        #expect(request.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(request.subject.description == "CN=app.hopgate.test")
        let extensions = try #require(try request.attributes.extensionRequest?.extensions)
        let names = try #require(try extensions.subjectAlternativeNames)
        #expect(Array(names) == [.dnsName("app.hopgate.test")])

        // Names longer than a common name may be stay in the SAN only.
        let long = String(repeating: "a", count: 60) + ".hopgate.test"
        let longRequest = try CertificateSigningRequest(
            derEncoded: try IssuedCertificate.signingRequest(for: long, key: key)
        )
        #expect(longRequest.subject.isEmpty)
    }

    @Test func theTLSALPNCertificateCarriesTheCriticalDigestOfTheKeyAuthorization() throws {
        let made = try IssuedCertificate.tlsALPNChallenge(domain: "alpn.hopgate.test", keyAuthorization: "token.thumb")
        let certificate = try Certificate(pemEncoded: made.chainPEM)
        let identifier = try #require(certificate.extensions.first { $0.oid == [1, 3, 6, 1, 5, 5, 7, 1, 31] })
        #expect(identifier.critical)
        let digest = try ASN1OctetString(derEncoded: identifier.value)
        #expect(Array(digest.bytes) == Array(SHA256.hash(data: Data("token.thumb".utf8))))
        #expect(
            Array(try #require(try certificate.extensions.subjectAlternativeNames)) == [.dnsName("alpn.hopgate.test")]
        )
        let key = try P256.Signing.PrivateKey(pemRepresentation: made.keyPEM)
        #expect(certificate.publicKey == Certificate.PublicKey(key.publicKey))
    }

    @Test func aRecordReadsTheLeafAndRefusesAChainForAnotherKey() throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("Test Issuer") }
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: [0x0a, 0xbc]),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: Date(timeIntervalSince1970: 1_800_000_000),
            notValidAfter: Date(timeIntervalSince1970: 1_807_776_000),
            issuer: name,
            subject: try DistinguishedName { CommonName("site.test") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions(),
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        let chain = try leaf.serializeAsPEM().pemString + "\n"
        let record = try IssuedCertificate.record(
            domain: "site.test",
            chainPEM: chain,
            privateKeyPEM: key.pemRepresentation
        )
        #expect(record.serialNumber == "0abc")
        #expect(record.issuer == "CN=Test Issuer")
        #expect(record.notAfter == Date(timeIntervalSince1970: 1_807_776_000))
        #expect(throws: ACMEError.self) {
            try IssuedCertificate.record(
                domain: "site.test",
                chainPEM: chain,
                privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation
            )
        }
        #expect(throws: (any Error).self) {
            try IssuedCertificate.record(domain: "site.test", chainPEM: "not pem", privateKeyPEM: key.pemRepresentation)
        }
    }

    @Test func aCertificateIsDueWhenMissingOrWithAThirdOfItsLifeLeft() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let record = CertificateRecord(
            domain: "a.test",
            chainPEM: "",
            privateKeyPEM: "",
            notBefore: start,
            notAfter: start.addingTimeInterval(90 * 86_400),
            issuer: "",
            serialNumber: "",
            updatedAt: start
        )
        #expect(CertificateManager.needsCertificate(nil, now: start))
        #expect(!CertificateManager.needsCertificate(record, now: start.addingTimeInterval(59 * 86_400)))
        #expect(CertificateManager.needsCertificate(record, now: start.addingTimeInterval(61 * 86_400)))
        #expect(CertificateManager.needsCertificate(record, now: start.addingTimeInterval(91 * 86_400)))
    }
}

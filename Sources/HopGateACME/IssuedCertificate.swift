import Crypto
import FoundationEssentials
import HopGateCore
import HopGateStore
import SwiftASN1
import X509

/// Keys, requests and certificates, on swift-crypto and swift-certificates.
enum IssuedCertificate {
    /// A CSR (DER) for `domain` signed by `key`: the name in subjectAltName, and as the common name where it fits.
    static func signingRequest(for domain: String, key: P256.Signing.PrivateKey) throws -> [UInt8] {
        // A common name is at most 64 characters (RFC 5280's ub-common-name); the SAN is what counts anyway.
        let subject = try DistinguishedName { if domain.count <= 64 { CommonName(domain) } }
        let extensions = try Certificate.Extensions { SubjectAlternativeNames([.dnsName(domain)]) }
        let request = try CertificateSigningRequest(
            version: .v1,
            subject: subject,
            privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes([
                try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions))
            ]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }

    /// The record to store for a downloaded chain and its key; throws when the chain does not parse or its leaf
    /// does not belong to the key.
    static func record(domain: String, chainPEM: String, privateKeyPEM: String) throws -> CertificateRecord {
        let documents = try PEMDocument.parseMultiple(pemString: chainPEM).filter { $0.discriminator == "CERTIFICATE" }
        guard let first = documents.first else { throw ACMEError("the certificate chain holds no certificate") }
        let leaf = try Certificate(derEncoded: first.derBytes)
        let key = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        guard leaf.publicKey == key.publicKey else {
            throw ACMEError("the certificate for \(domain) is not for the key it is stored with")
        }
        return CertificateRecord(
            domain: domain,
            chainPEM: chainPEM,
            privateKeyPEM: privateKeyPEM,
            notBefore: leaf.notValidBefore,
            notAfter: leaf.notValidAfter,
            issuer: leaf.issuer.description,
            serialNumber: Hex.encode(leaf.serialNumber.bytes),
            updatedAt: Date()
        )
    }

    /// The self-signed certificate a TLS-ALPN-01 validation must see (RFC 8737 §3): `domain` as its only SAN, and
    /// the critical acmeIdentifier extension holding SHA-256 of the key authorization.
    static func tlsALPNChallenge(domain: String, keyAuthorization: String) throws -> (chainPEM: String, keyPEM: String)
    {
        let key = P256.Signing.PrivateKey()
        let digest = Array(SHA256.hash(data: Data(keyAuthorization.utf8)))
        var serializer = DER.Serializer()
        try serializer.serialize(ASN1OctetString(contentBytes: digest[...]))
        let acmeIdentifier = Certificate.Extension(
            oid: [1, 3, 6, 1, 5, 5, 7, 1, 31],
            critical: true,
            value: serializer.serializedBytes[...]
        )
        let name = try DistinguishedName { CommonName("ACME challenge") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(7 * 86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames([.dnsName(domain)])
                acmeIdentifier
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }
}

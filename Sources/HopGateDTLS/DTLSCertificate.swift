import CHopGateDTLS
import Crypto
import FoundationEssentials
import HopGateCore

/// A server certificate chain and its private key, in PEM.
public struct DTLSCertificate: Sendable, Equatable {
    /// The leaf certificate first, then intermediates.
    public let chainPEM: String
    public let privateKeyPEM: String

    public init(chainPEM: String, privateKeyPEM: String) {
        self.chainPEM = chainPEM
        self.privateKeyPEM = privateKeyPEM
    }

    /// Reads a PEM chain and key from files (as `--tls-cert` / `--tls-key` name them).
    public static func load(chainPath: String, keyPath: String) throws -> DTLSCertificate {
        func read(_ path: String, _ what: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw DTLSError(.configuration, "cannot read the \(what) file \(path)")
            }
            return String(decoding: data, as: UTF8.self)
        }
        return DTLSCertificate(chainPEM: try read(chainPath, "certificate"), privateKeyPEM: try read(keyPath, "key"))
    }

    /// A self-signed ECDSA P-256 certificate for `names` (the first is the subject), for dev mode and tests.
    /// - Parameters:
    ///   - validFrom: seconds from now when it becomes valid (negative for the past, to make expired ones).
    ///   - days: how long it stays valid.
    public static func selfSigned(names: [String], validFrom: Int = -3600, days: Int = 365) throws -> DTLSCertificate {
        precondition(!names.isEmpty, "a certificate names at least one host")
        var cStrings = names.map { strdup($0) }
        defer { for string in cStrings { free(string) } }
        var certificate: UnsafeMutablePointer<CChar>?
        var certificateLength = 0
        var key: UnsafeMutablePointer<CChar>?
        var keyLength = 0
        let made = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { names in
                hg_make_self_signed(
                    names.baseAddress,
                    names.count,
                    validFrom,
                    Int32(days),
                    &certificate,
                    &certificateLength,
                    &key,
                    &keyLength
                )
            }
        }
        defer {
            free(certificate)
            free(key)
        }
        guard made == 1, let certificate, let key else {
            throw DTLSError(.configuration, "cannot make a self-signed certificate: \(drainOpenSSLErrors())")
        }
        return DTLSCertificate(
            chainPEM: String(
                decoding: UnsafeRawBufferPointer(start: certificate, count: certificateLength),
                as: UTF8.self
            ),
            privateKeyPEM: String(decoding: UnsafeRawBufferPointer(start: key, count: keyLength), as: UTF8.self)
        )
    }

    /// The SHA-256 fingerprint of the leaf certificate's DER form, as lowercase hex: what `--server-fingerprint`
    /// takes, and what `openssl x509 -noout -fingerprint -sha256` prints (without the colons).
    public var fingerprint: String? {
        guard let begin = chainPEM.firstRange(of: "-----BEGIN CERTIFICATE-----"),
            let end = chainPEM[begin.upperBound...].firstRange(of: "-----END CERTIFICATE-----"),
            let der = Data(
                base64Encoded: String(chainPEM[begin.upperBound..<end.lowerBound]),
                options: .ignoreUnknownCharacters
            )
        else { return nil }
        return Hex.encode(SHA256.hash(data: der))
    }
}

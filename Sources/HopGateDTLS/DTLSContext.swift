import CHopGateDTLS
import COpenSSL
import FoundationEssentials

/// How the client checks the server's certificate.
public enum DTLSServerVerification: Sendable, Equatable {
    /// The system's trust store, and the certificate must name the server.
    case systemTrustStore
    /// Only CAs from this PEM file, and the certificate must name the server.
    case caFile(String)
    /// Exactly this certificate: the SHA-256 of its DER form, 64 hex characters (colons allowed).
    case fingerprint(String)
    /// No check at all. For tests and `--insecure`; the caller warns loudly.
    case insecure
}

/// An OpenSSL SSL_CTX for DTLS 1.2, set up for one role. Cheap to share: every session makes its SSL from it.
final class DTLSContext: @unchecked Sendable {
    // @unchecked: SSL_CTX is reference-counted and safe to create SSL objects from on several threads once set up;
    // the cookie secrets are only rotated on the server's event loop.
    let pointer: OpaquePointer
    private let cookieSecrets: OpaquePointer?
    let verification: DTLSServerVerification?

    /// ECDHE key exchange with AEAD ciphers only (AES-GCM, ChaCha20-Poly1305), per the design.
    static let cipherList =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
        + "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"

    private init(server: Bool, verification: DTLSServerVerification?) throws {
        guard let pointer = SSL_CTX_new(DTLS_method()) else {
            throw DTLSError(.configuration, "OpenSSL cannot make a DTLS context: \(drainOpenSSLErrors())")
        }
        self.pointer = pointer
        self.verification = verification
        self.cookieSecrets = server ? hg_cookie_secrets_new() : nil
        // Without cookie secrets every ClientHello would fail in DTLSv1_listen: a server that accepts no one.
        guard !server || cookieSecrets != nil else {
            throw DTLSError(.configuration, "cannot make the cookie secret: \(drainOpenSSLErrors())")
        }
        guard hg_ctx_set_dtls12_only(pointer) == 1, SSL_CTX_set_cipher_list(pointer, Self.cipherList) == 1 else {
            throw DTLSError(.configuration, "OpenSSL refused the DTLS 1.2 settings: \(drainOpenSSLErrors())")
        }
        hg_ctx_set_options(pointer)
        if let cookieSecrets { hg_ctx_use_cookies(pointer, cookieSecrets) }
    }

    deinit {
        SSL_CTX_free(pointer)
        if let cookieSecrets { hg_cookie_secrets_free(cookieSecrets) }
    }

    static func server(certificate: DTLSCertificate) throws -> DTLSContext {
        let context = try DTLSContext(server: true, verification: nil)
        var error = [CChar](repeating: 0, count: 512)
        let chain = Array(certificate.chainPEM.utf8CString)
        let key = Array(certificate.privateKeyPEM.utf8CString)
        guard hg_ctx_use_pem(context.pointer, chain, chain.count - 1, key, key.count - 1, &error, error.count) == 1
        else {
            throw DTLSError(.configuration, "cannot use the server certificate: \(String(cBuffer: error))")
        }
        return context
    }

    static func client(verification: DTLSServerVerification) throws -> DTLSContext {
        let context = try DTLSContext(server: false, verification: verification)
        switch verification {
        case .systemTrustStore:
            SSL_CTX_set_default_verify_paths(context.pointer)
            SSL_CTX_set_verify(context.pointer, SSL_VERIFY_PEER, nil)
        case .caFile(let path):
            guard SSL_CTX_load_verify_locations(context.pointer, path, nil) == 1 else {
                throw DTLSError(.configuration, "cannot load the CA file \(path): \(drainOpenSSLErrors())")
            }
            SSL_CTX_set_verify(context.pointer, SSL_VERIFY_PEER, nil)
        case .fingerprint(let text):
            guard Self.normalizedFingerprint(text) != nil else {
                throw DTLSError(.configuration, "the fingerprint '\(text)' is not 64 hex characters (SHA-256)")
            }
            hg_ctx_accept_any_certificate(context.pointer)
        case .insecure:
            hg_ctx_accept_any_certificate(context.pointer)
        }
        return context
    }

    /// Makes a new cookie secret; cookies made under the previous one are still accepted until the next rotation.
    func rotateCookieSecret() {
        if let cookieSecrets { _ = hg_cookie_secrets_rotate(cookieSecrets) }
    }

    /// Lowercase hex without colons, or nil if it is not a SHA-256.
    static func normalizedFingerprint(_ text: String) -> String? {
        let hex = text.lowercased().filter { $0 != ":" }
        return hex.count == 64 && hex.allSatisfy(\.isHexDigit) ? hex : nil
    }
}

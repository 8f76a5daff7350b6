import HopGateDTLS
import NIOCore
import NIOSSL
import Synchronization

/// The certificates the HTTPS listener serves, chosen per SNI name at each handshake: PEM files now, ACME later
/// through `install`. Replacing one takes effect at the next handshake, without a restart.
public final class TLSCertificateStore: Sendable {
    public struct Entry: Sendable {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        /// The PEM it came from, for the DTLS listener and for display.
        public let pem: DTLSCertificate
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// Served when no name matches (and to clients that send no SNI).
    private let fallbackName: String

    public init(fallbackName: String) {
        self.fallbackName = fallbackName.lowercased()
    }

    /// Serves `certificate` for each of `names` (`*.example.com` covers one label). Throws when the PEM does not
    /// parse.
    public func install(_ certificate: DTLSCertificate, for names: [String]) throws {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.chainPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem)
        guard !chain.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
        let entry = Entry(chain: chain, key: key, pem: certificate)
        entries.withLock { entries in
            for name in names { entries[name.lowercased()] = entry }
        }
    }

    /// The entry for a server name: exact, then the wildcard one label up, then the fallback.
    public func entry(for serverName: String?) -> Entry? {
        entries.withLock { entries in
            if let name = serverName?.lowercased(), let entry = Self.match(name, in: entries) { return entry }
            return entries[fallbackName] ?? entries.values.first
        }
    }

    /// The entry that covers `name` itself (exactly or by wildcard), never a fallback.
    public func entry(covering name: String) -> Entry? {
        entries.withLock { Self.match(name.lowercased(), in: $0) }
    }

    private static func match(_ name: String, in entries: [String: Entry]) -> Entry? {
        if let exact = entries[name] { return exact }
        if let dot = name.firstIndex(of: "."), let wildcard = entries["*" + name[dot...]] { return wildcard }
        return nil
    }

    /// A server context that picks the certificate per handshake, offering `alpn`. With no certificate installed
    /// yet (ACME has not issued one), handshakes fail until one is: a throwaway certificate fills the base
    /// configuration that NIOSSL requires, and is never presented.
    func makeServerContext(alpn: [String] = ["http/1.1"]) throws -> NIOSSLContext {
        let fallback: Entry
        if let installed = entry(for: nil) {
            fallback = installed
        } else {
            let placeholder = try DTLSCertificate.selfSigned(names: ["placeholder.invalid"], days: 1)
            fallback = Entry(
                chain: try NIOSSLCertificate.fromPEMBytes(Array(placeholder.chainPEM.utf8)),
                key: try NIOSSLPrivateKey(bytes: Array(placeholder.privateKeyPEM.utf8), format: .pem),
                pem: placeholder
            )
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: fallback.chain.map { .certificate($0) },
            privateKey: .privateKey(fallback.key)
        )
        configuration.applicationProtocols = alpn
        configuration.sslContextCallback = { [self] values, promise in
            guard let entry = self.entry(for: values.serverHostname) else {
                promise.fail(NoCertificateError(serverName: values.serverHostname))
                return
            }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = entry.chain.map { .certificate($0) }
            override.privateKey = .privateKey(entry.key)
            promise.succeed(override)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// A handshake for a name the edge has no certificate for yet.
struct NoCertificateError: Error, CustomStringConvertible {
    let serverName: String?
    var description: String { "no certificate for \(serverName ?? "a client without SNI") yet" }
}

/// The DTLS listener presents the main domain's certificate: whatever is installed for it now, so an ACME renewal
/// reaches new tunnel sessions without a restart.
public struct InstalledCertificateSource: DTLSCertificateSource {
    let store: TLSCertificateStore
    let name: String

    public init(store: TLSCertificateStore, name: String) {
        self.store = store
        self.name = name
    }

    public func currentCertificate() throws -> DTLSCertificate {
        guard let entry = store.entry(covering: name) else { throw NoCertificateError(serverName: name) }
        return entry.pem
    }
}

import Foundation
import HopGateTestSupport
import NIOCore
import Testing

@testable import HopGateDTLS

/// Each way a server certificate can be wrong fails with its own code and a message saying what was expected
/// and what was seen.
@Suite(.timeLimit(.minutes(2))) struct DTLSCertificateTests {
    private func connectFailure(
        _ configuration: DTLSClientConfiguration,
        server certificate: DTLSCertificate = edgeCertificate
    ) async throws -> (DTLSError, DTLSServerStatistics) {
        let server = try await EchoServer(certificate: certificate)
        let outcome: Result<Void, any Error>
        do {
            let client = try await DTLSClient.connect(
                host: "127.0.0.1",
                port: server.port,
                configuration: configuration
            )
            try await client.channel.close()
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        // Give the server a moment to see the client's alert.
        try await Task.sleep(for: .milliseconds(300))
        let statistics = server.statistics
        await server.stop()
        guard case .failure(let failure) = outcome else {
            Issue.record("the handshake should have failed")
            throw TimeoutError()
        }
        return (try #require(failure as? DTLSError), statistics)
    }

    @Test func aTrustedCertificateForTheRightNameIsAccepted() async throws {
        let server = try await EchoServer()
        let configuration = DTLSClientConfiguration(
            serverName: "edge.test",
            verification: .caFile(try caFile(for: edgeCertificate))
        )
        let client = try await DTLSClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration)
        try await client.channel.close()
        await server.stop()
    }

    @Test func theWrongHostNameIsRejected() async throws {
        let configuration = DTLSClientConfiguration(
            serverName: "other.test",
            verification: .caFile(try caFile(for: edgeCertificate))
        )
        let (error, statistics) = try await connectFailure(configuration)
        #expect(error.code == .certificateRejected)
        #expect(error.message.contains("not valid for other.test"))
        #expect(error.message.contains("names=edge.test"))
        #expect(statistics.handshakesFailed == 1 && statistics.sessionsEstablished == 0)
    }

    @Test func theWrongFingerprintIsRejected() async throws {
        let other = try DTLSCertificate.selfSigned(names: ["edge.test"])
        let pinned = try #require(other.fingerprint)
        let configuration = DTLSClientConfiguration(serverName: "edge.test", verification: .fingerprint(pinned))
        let (error, _) = try await connectFailure(configuration)
        #expect(error.code == .fingerprintMismatch)
        #expect(error.message.contains("not the pinned \(pinned)"))
        #expect(error.message.contains(try #require(edgeCertificate.fingerprint)))
    }

    @Test func anExpiredCertificateIsRejected() async throws {
        let expired = try DTLSCertificate.selfSigned(names: ["edge.test"], validFrom: -400 * 86400, days: 30)
        let configuration = DTLSClientConfiguration(
            serverName: "edge.test",
            verification: .caFile(try caFile(for: expired))
        )
        let (error, _) = try await connectFailure(configuration, server: expired)
        #expect(error.code == .certificateRejected)
        #expect(error.message.contains("has expired"))
        #expect(error.message.contains("not_after="))
    }

    @Test func anUntrustedIssuerIsRejected() async throws {
        let stranger = try DTLSCertificate.selfSigned(names: ["edge.test"])
        let path = try caFile(for: stranger)
        let configuration = DTLSClientConfiguration(serverName: "edge.test", verification: .caFile(path))
        let (error, _) = try await connectFailure(configuration)
        #expect(error.code == .certificateRejected)
        #expect(error.message.contains("not trusted by the CA file \(path)"))
        #expect(error.message.contains("issuer=/CN=edge.test"))
    }

    @Test func theSystemTrustStoreDoesNotTrustASelfSignedCertificate() async throws {
        let configuration = DTLSClientConfiguration(serverName: "edge.test", verification: .systemTrustStore)
        let (error, _) = try await connectFailure(configuration)
        #expect(error.code == .certificateRejected)
        #expect(error.message.contains("not trusted by the system trust store"))
    }

    @Test func badConfigurationIsReportedBeforeAnyPacket() throws {
        #expect(throws: DTLSError(.configuration, "")) {
            try DTLSContext.client(verification: .caFile("/nonexistent/ca.pem"))
        }
        #expect(throws: DTLSError(.configuration, "")) { try DTLSContext.client(verification: .fingerprint("abc")) }
        #expect(throws: DTLSError(.configuration, "")) {
            try DTLSContext.server(certificate: DTLSCertificate(chainPEM: "junk", privateKeyPEM: "junk"))
        }
        let mismatched = DTLSCertificate(
            chainPEM: edgeCertificate.chainPEM,
            privateKeyPEM: try DTLSCertificate.selfSigned(names: ["x.test"]).privateKeyPEM
        )
        let error = #expect(throws: DTLSError.self) { try DTLSContext.server(certificate: mismatched) }
        #expect(error?.message.contains("does not match") == true)
    }

    @Test func anEncryptedKeyIsRefusedInsteadOfPromptingForAPassphrase() async throws {
        let directory = NSTemporaryDirectory() + "/hopgate-encrypted-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let output = try await offload {
            try runProcess(
                "/usr/bin/openssl",
                [
                    "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass",
                    "pass:secret",
                    "-out", directory + "/key.pem",
                ]
            )
        }
        #expect(output.status == 0, "\(output.standardError)")
        let encrypted = try String(contentsOfFile: directory + "/key.pem", encoding: .utf8)
        #expect(encrypted.contains("ENCRYPTED"))
        let error = #expect(throws: DTLSError.self) {
            try DTLSContext.server(
                certificate: DTLSCertificate(chainPEM: edgeCertificate.chainPEM, privateKeyPEM: encrypted)
            )
        }
        #expect(error?.message.contains("not an unencrypted PEM private key") == true)
    }

    @Test func anEmptyServerNameIsRefused() throws {
        let context = try DTLSContext.client(verification: .systemTrustStore)
        #expect(throws: DTLSError(.configuration, "")) {
            try DTLSConnection(clientContext: context, mtu: 1200, serverName: "")
        }
    }

    @Test func fingerprintsMatchOpenSSLsForm() throws {
        let fingerprint = try #require(edgeCertificate.fingerprint)
        #expect(fingerprint.count == 64)
        let colons = stride(from: 0, to: 64, by: 2).map { index in
            let start = fingerprint.index(fingerprint.startIndex, offsetBy: index)
            return String(fingerprint[start..<fingerprint.index(start, offsetBy: 2)]).uppercased()
        }.joined(separator: ":")
        #expect(DTLSContext.normalizedFingerprint(colons) == fingerprint)
    }
}

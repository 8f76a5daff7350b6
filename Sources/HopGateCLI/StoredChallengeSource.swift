import HopGateACME
import HopGateDTLS
import HopGateEdge

/// The edge's view of the ACME challenge answers in the store.
struct StoredChallengeSource: ACMEChallengeSource {
    let answers: ChallengeAnswers

    init(_ answers: ChallengeAnswers) { self.answers = answers }

    func httpKeyAuthorization(token: String, host: String) async -> String? {
        await answers.httpKeyAuthorization(token: token, host: host)
    }

    func tlsALPNCertificate(serverName: String) async -> DTLSCertificate? {
        await answers.tlsALPNCertificate(serverName: serverName).map {
            DTLSCertificate(chainPEM: $0.chainPEM, privateKeyPEM: $0.keyPEM)
        }
    }
}

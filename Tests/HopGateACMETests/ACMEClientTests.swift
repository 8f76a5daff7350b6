import Foundation
import Logging
import Synchronization
import Testing

@testable import HopGateACME

/// The protocol client against a scripted CA: nonces, badNonce, problem documents, Retry-After, transient failures.
@Suite struct ACMEClientTests {
    static let directory = """
        {"newNonce":"https://ca.test/nonce","newAccount":"https://ca.test/acct","newOrder":"https://ca.test/order"}
        """

    @Test func registersWithAFreshNonceAndRetriesABadNonce() async throws {
        let ca = ScriptedCA { request, count in
            switch (request.method, request.url) {
            case ("GET", "https://ca.test/dir"): return .init(status: 200, body: Data(Self.directory.utf8))
            case ("GET", "https://ca.test/nonce"): return .init(status: 204, headers: [("Replay-Nonce", "n\(count)")])
            // Requests 3 and 4 (the first two POSTs) meet a rejected nonce.
            case ("POST", "https://ca.test/acct") where count < 5:
                return .problem(400, "badNonce", "JWS has an invalid anti-replay nonce", nonce: "fresh\(count)")
            case ("POST", "https://ca.test/acct"):
                return .init(status: 201, headers: [("Location", "https://ca.test/acct/1"), ("Replay-Nonce", "z")])
            default: return .init(status: 404)
            }
        }
        let client = ACMEClient(
            directoryURL: "https://ca.test/dir",
            key: ACMEAccountKey(),
            transport: ca,
            logger: Logger(label: "test")
        )
        let account = try await client.register(contactEmail: "ops@hopgate.test", agreeToTerms: true)
        #expect(account == "https://ca.test/acct/1")
        let posts = ca.requests.filter { $0.method == "POST" }
        #expect(posts.count == 3)
        // Each retry signs with the nonce the rejection carried.
        #expect(posts.map(\.nonce) == ["n2", "fresh3", "fresh4"])
        let payload = try #require(posts.last?.payload)
        #expect(payload["termsOfServiceAgreed"] as? Bool == true)
        #expect(payload["contact"] as? [String] == ["mailto:ops@hopgate.test"])
    }

    @Test func aProblemDocumentBecomesAnErrorThatSaysWhatAndWhy() async throws {
        let ca = ScriptedCA { request, _ in
            switch request.url {
            case "https://ca.test/dir": return .init(status: 200, body: Data(Self.directory.utf8))
            case "https://ca.test/nonce": return .init(status: 204, headers: [("Replay-Nonce", "n")])
            case "https://ca.test/acct":
                return .init(status: 201, headers: [("Location", "https://ca.test/acct/1"), ("Replay-Nonce", "m")])
            default:
                var response = ScriptedCA.Response.problem(
                    429,
                    "rateLimited",
                    "too many certificates already issued",
                    subproblem: ("rejectedIdentifier", "x.test", "name refused")
                )
                response.headers.append(("Retry-After", "3600"))
                return response
            }
        }
        let client = ACMEClient(
            directoryURL: "https://ca.test/dir",
            key: ACMEAccountKey(),
            transport: ca,
            logger: Logger(label: "test")
        )
        _ = try await client.register(contactEmail: nil, agreeToTerms: true)
        let error = await #expect(throws: ACMEError.self) { try await client.newOrder(names: ["x.test"]) }
        #expect(error?.problemType == "rateLimited")
        #expect(error?.retryAfter == .seconds(3600))
        let message = error?.message ?? ""
        #expect(message.contains("create an order for x.test"))
        #expect(message.contains("too many certificates already issued (rateLimited, HTTP 429)"))
        #expect(message.contains("x.test: name refused (rejectedIdentifier)"))
    }

    @Test func aCAThatIsDownIsRetriedThenReportedWithItsAddress() async throws {
        let ca = ScriptedCA { request, count in
            if count < 3 { throw CancellationError() }
            return .init(status: 503, headers: [("Retry-After", "0")])
        }
        let client = ACMEClient(
            directoryURL: "https://ca.test/dir",
            key: ACMEAccountKey(),
            transport: ca,
            logger: Logger(label: "test"),
            transientRetryDelays: [.milliseconds(1), .milliseconds(1), .milliseconds(1)]
        )
        let error = await #expect(throws: ACMEError.self) {
            try await client.register(contactEmail: nil, agreeToTerms: true)
        }
        #expect(ca.requests.count == 4, "one try and three retries")
        #expect(
            error?.message.contains(
                "cannot reach the ACME server at https://ca.test/dir to read the ACME directory: HTTP 503"
            ) == true
        )
    }

    @Test func retryAfterReadsSecondsAndHTTPDates() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(ACMEHTTPResponse(status: 200, headers: [("retry-after", "12")]).retryAfter(now: now) == .seconds(12))
        let date = "Fri, 15 Jan 2027 08:00:30 GMT"  // 1_800_000_030
        #expect(ACMEHTTPResponse(status: 200, headers: [("Retry-After", date)]).retryAfter(now: now) == .seconds(30))
        #expect(ACMEHTTPResponse(status: 200, headers: [("Retry-After", "soon")]).retryAfter(now: now) == nil)
        #expect(ACMEHTTPResponse(status: 200).retryAfter(now: now) == nil)
    }
}

/// A CA made of a function from request (and how many requests came before, plus one) to response.
final class ScriptedCA: ACMETransport, Sendable {
    struct Request: Sendable {
        let method: String
        let url: String
        let body: Data?

        /// The JWS protected header's nonce.
        var nonce: String? { header?["nonce"] as? String }
        var header: [String: Any]? { part("protected") }
        var payload: [String: Any]? { part("payload") }

        private func part(_ name: String) -> [String: Any]? {
            guard let body, let object = try? JSONSerialization.jsonObject(with: body) as? [String: String],
                let encoded = object[name], let data = Base64URL.decode(encoded)
            else { return nil }
            return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
    }

    typealias Response = ACMEHTTPResponse
    private let script: @Sendable (Request, Int) throws -> Response
    private let log = Mutex<[Request]>([])

    init(_ script: @escaping @Sendable (Request, Int) throws -> Response) { self.script = script }

    var requests: [Request] { log.withLock { $0 } }

    func send(
        _ method: String,
        _ url: String,
        body: Data?,
        headers: [(String, String)]
    ) async throws -> ACMEHTTPResponse {
        let request = Request(method: method, url: url, body: body)
        let count = log.withLock { log in
            log.append(request)
            return log.count
        }
        return try script(request, count)
    }
}

extension ACMEHTTPResponse {
    static func problem(
        _ status: Int,
        _ type: String,
        _ detail: String,
        nonce: String? = nil,
        subproblem: (type: String, name: String, detail: String)? = nil
    ) -> ACMEHTTPResponse {
        var object: [String: Any] = ["type": "urn:ietf:params:acme:error:\(type)", "detail": detail, "status": status]
        if let subproblem {
            object["subproblems"] = [
                [
                    "type": "urn:ietf:params:acme:error:\(subproblem.type)", "detail": subproblem.detail,
                    "identifier": ["type": "dns", "value": subproblem.name],
                ]
            ]
        }
        var headers = [("Content-Type", "application/problem+json")]
        if let nonce { headers.append(("Replay-Nonce", nonce)) }
        return ACMEHTTPResponse(
            status: status,
            headers: headers,
            body: (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        )
    }
}

import FoundationEssentials
import HopGateCore
import HopGateHTTPClient
import NIOHTTP1

/// An HTTP exchange with the CA: a seam so that the protocol code can be tested against a scripted CA.
public protocol ACMETransport: Sendable {
    func send(
        _ method: String,
        _ url: String,
        body: Data?,
        headers: [(String, String)]
    ) async throws
        -> ACMEHTTPResponse
}

public struct ACMEHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: Data

    public init(status: Int, headers: [(String, String)] = [], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of `name`, case-insensitively.
    func header(_ name: String) -> String? {
        let name = name.lowercased()
        return headers.first { $0.0.lowercased() == name }?.1
    }

    /// How long Retry-After says to wait: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
    func retryAfter(now: Date = Date()) -> Duration? {
        guard let value = header("Retry-After")?.trimmingWhitespace() else { return nil }
        if let seconds = Int(value) { return .seconds(max(0, seconds)) }
        guard let date = Timestamp.parseHTTPDate(value) else { return nil }
        return .seconds(max(0, Int(date.timeIntervalSince(now).rounded(.up))))
    }
}

/// The real transport: one HTTPS request per exchange, trusting the system store or `--acme-ca-file`.
public struct HTTPSACMETransport: ACMETransport {
    let trust: HTTPSRequest.Trust

    public init(trust: HTTPSRequest.Trust) { self.trust = trust }

    public func send(
        _ method: String,
        _ url: String,
        body: Data?,
        headers: [(String, String)]
    ) async throws
        -> ACMEHTTPResponse
    {
        guard let parsed = URL(string: url), parsed.scheme == "https" || parsed.scheme == "http" else {
            throw ACMEError("the CA gave a URL HopGate cannot use: \(url)")
        }
        var request = HTTPSRequest(
            url: parsed,
            method: HTTPMethod(rawValue: method),
            headers: HTTPHeaders(headers + [("User-Agent", "hopgate")]),
            body: body,
            trust: trust
        )
        request.timeout = .seconds(30)
        let response = try await request.send()
        return ACMEHTTPResponse(
            status: Int(response.status.code),
            headers: response.headers.map { ($0.name, $0.value) },
            body: response.body
        )
    }
}

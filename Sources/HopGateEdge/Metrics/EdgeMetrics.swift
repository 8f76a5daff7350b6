import FoundationEssentials
import HopGateTunnel
import NIOHTTP1
import Synchronization

/// The edge's counters, rendered in the Prometheus text format. Few enough series that one lock is cheap; label
/// values come from small fixed sets (methods outside the standard ones count as OTHER), so a client cannot blow
/// the series up.
public final class EdgeMetrics: Sendable {
    /// Upper bounds of the request duration histogram, in seconds.
    static let durationBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    /// The method labels: the standard methods, and OTHER for any other.
    static let methodLabels = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "OTHER"]

    /// `method`'s place in `methodLabels`.
    static func methodLabelIndex(_ method: HTTPMethod) -> UInt8 {
        switch method {
        case .GET: return 0
        case .HEAD: return 1
        case .POST: return 2
        case .PUT: return 3
        case .DELETE: return 4
        case .PATCH: return 5
        case .OPTIONS: return 6
        case .CONNECT: return 7
        default: return 8
        }
    }

    /// A series of the request counter, by the place of its method label: making and hashing a "method,status"
    /// string for every request was about 1.7k instructions (callgrind).
    private struct RequestSeries: Hashable, Comparable {
        let method: UInt8
        let status: UInt

        var label: String { "method=\"\(EdgeMetrics.methodLabels[Int(method)])\",status=\"\(status)\"" }

        static func < (lhs: Self, rhs: Self) -> Bool { lhs.label < rhs.label }
    }

    private struct State {
        var requests: [RequestSeries: Int] = [:]
        var durationCounts = [Int](repeating: 0, count: EdgeMetrics.durationBuckets.count)
        var durationSum = 0.0
        var durationTotal = 0
        var proxyErrors: [String: Int] = [:]
        var handshakes: [String: Int] = [:]
        var bytesIn = 0
        var bytesOut = 0
        /// The last measured round trip of each live session, in milliseconds.
        var roundTrips: [UInt64] = []
    }

    private let state = Mutex(State())
    /// Read when rendering: values that live elsewhere (sessions, RTT, DTLS counters).
    private let gauges: Mutex<[@Sendable () -> [(String, Double)]]> = Mutex([])

    public init() {}

    func requestFinished(method: HTTPMethod, status: UInt, seconds: Double, bytesIn: Int, bytesOut: Int) {
        let series = RequestSeries(method: Self.methodLabelIndex(method), status: status)
        state.withLock { state in
            state.requests[series, default: 0] += 1
            for (index, bound) in Self.durationBuckets.enumerated() where seconds <= bound {
                state.durationCounts[index] += 1
            }
            state.durationSum += seconds
            state.durationTotal += 1
            state.bytesIn += bytesIn
            state.bytesOut += bytesOut
        }
    }

    /// A request the proxy could not complete: `no_tunnel`, `timeout`, `local_unavailable`, `aborted`, ...
    func proxyError(_ type: String) {
        state.withLock { $0.proxyErrors[type, default: 0] += 1 }
    }

    /// The sessions' latest round trips, reported by the tunnel listener every second.
    func tunnelRoundTrips(_ milliseconds: [UInt64]) {
        state.withLock { $0.roundTrips = milliseconds }
    }

    public func handshake(_ result: String) {
        state.withLock { $0.handshakes[result, default: 0] += 1 }
    }

    /// Adds series computed at render time (name with labels, value).
    public func addGauges(_ source: @escaping @Sendable () -> [(String, Double)]) {
        gauges.withLock { $0.append(source) }
    }

    public func render() -> String {
        let snapshot = state.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        family("hopgate_http_requests_total", "counter", "HTTP requests answered, by method and status.")
        for (series, count) in snapshot.requests.sorted(by: { $0.key < $1.key }) {
            out += "hopgate_http_requests_total{\(series.label)} \(count)\n"
        }
        family("hopgate_http_request_duration_seconds", "histogram", "Time from request head to response end.")
        for (index, bound) in Self.durationBuckets.enumerated() {
            out += "hopgate_http_request_duration_seconds_bucket{le=\"\(bound)\"} \(snapshot.durationCounts[index])\n"
        }
        out += "hopgate_http_request_duration_seconds_bucket{le=\"+Inf\"} \(snapshot.durationTotal)\n"
        out += "hopgate_http_request_duration_seconds_sum \(snapshot.durationSum)\n"
        out += "hopgate_http_request_duration_seconds_count \(snapshot.durationTotal)\n"
        family("hopgate_proxy_errors_total", "counter", "Requests the proxy could not complete, by type.")
        for (type, count) in snapshot.proxyErrors.sorted(by: { $0.key < $1.key }) {
            out += "hopgate_proxy_errors_total{type=\"\(type)\"} \(count)\n"
        }
        family("hopgate_dtls_handshakes_total", "counter", "Tunnel handshakes, by result.")
        for (result, count) in snapshot.handshakes.sorted(by: { $0.key < $1.key }) {
            out += "hopgate_dtls_handshakes_total{result=\"\(result)\"} \(count)\n"
        }
        family("hopgate_http_bytes_received_total", "counter", "Request body bytes received from browsers.")
        out += "hopgate_http_bytes_received_total \(snapshot.bytesIn)\n"
        family("hopgate_http_bytes_sent_total", "counter", "Response body bytes sent to browsers.")
        out += "hopgate_http_bytes_sent_total \(snapshot.bytesOut)\n"
        family("hopgate_tunnel_rtt_milliseconds", "gauge", "Round trip of the tunnel sessions' pings: mean and max.")
        let trips = snapshot.roundTrips
        let mean = trips.isEmpty ? 0 : Double(trips.reduce(0, +)) / Double(trips.count)
        out += "hopgate_tunnel_rtt_milliseconds{stat=\"mean\"} \(mean)\n"
        out += "hopgate_tunnel_rtt_milliseconds{stat=\"max\"} \(trips.max() ?? 0)\n"
        family("hopgate_tunnel_retransmitted_chunks_total", "counter", "SCTP DATA chunks sent again (loss).")
        out += "hopgate_tunnel_retransmitted_chunks_total \(SCTPStack.retransmittedChunks)\n"
        let sources = gauges.withLock { $0 }
        var declared = Set<String>()
        for source in sources {
            for (series, value) in source() {
                let name = String(series.prefix { $0 != "{" })
                if declared.insert(name).inserted { out += "# TYPE \(name) gauge\n" }
                out += "\(series) \(value)\n"
            }
        }
        return out
    }
}

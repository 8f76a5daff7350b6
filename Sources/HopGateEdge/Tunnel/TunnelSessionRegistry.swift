import HopGateCore
import Synchronization

/// The live sessions by domain, for routing: which sessions can take a request for a host and path. Several
/// sessions for one domain share the load (round robin) and take over for each other.
public final class TunnelSessionRegistry: Sendable {
    private struct State {
        var byDomain: [String: [EdgeTunnelSession]] = [:]
        /// Where the next round-robin pick starts, per domain.
        var nextPick: [String: Int] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    func add(_ session: EdgeTunnelSession) {
        state.withLock { $0.byDomain[session.domain, default: []].append(session) }
    }

    func remove(_ session: EdgeTunnelSession) {
        state.withLock { state in
            state.byDomain[session.domain]?.removeAll { $0 === session }
            if state.byDomain[session.domain]?.isEmpty == true {
                state.byDomain[session.domain] = nil
                state.nextPick[session.domain] = nil
            }
        }
    }

    /// The sessions that serve `domain`, in connection order.
    public func sessions(for domain: String) -> [EdgeTunnelSession] {
        state.withLock { $0.byDomain[domain] ?? [] }
    }

    public var count: Int { state.withLock { $0.byDomain.values.reduce(0) { $0 + $1.count } } }

    /// The sessions to try for a request, best first: those whose longest matching path prefix is the longest of
    /// all, starting at the next in turn, then the others that match, in the same way; sessions whose peer seems
    /// gone (being probed) come after all others. Empty when none serves it.
    public func candidates(
        domain: String,
        path: String,
        excluding excluded: [EdgeTunnelSession] = []
    )
        -> [EdgeTunnelSession]
    {
        let ranked = rankedCandidates(domain: domain, path: path)
        // The usual case, one session and nothing to exclude, without the filtering's arrays: this runs for every
        // request.
        if ranked.count <= 1 && excluded.isEmpty { return ranked }
        let kept = ranked.filter { session in !excluded.contains { $0 === session } }
        return kept.filter { !$0.isSuspect } + kept.filter(\.isSuspect)
    }

    private func rankedCandidates(domain: String, path: String) -> [EdgeTunnelSession] {
        state.withLock { state in
            guard let sessions = state.byDomain[domain], !sessions.isEmpty else { return [] }
            if sessions.count == 1 {
                return Self.longestPrefix(of: sessions[0], serving: path) == nil ? [] : sessions
            }
            let start = state.nextPick[domain, default: 0] % sessions.count
            state.nextPick[domain] = start + 1
            let rotated = Array(sessions[start...] + sessions[..<start])
            let scored: [(session: EdgeTunnelSession, length: Int)] = rotated.compactMap { session in
                Self.longestPrefix(of: session, serving: path).map { (session, $0) }
            }
            // A stable sort keeps the rotation among equals.
            return scored.enumerated().sorted { left, right in
                left.element.length != right.element.length
                    ? left.element.length > right.element.length : left.offset < right.offset
            }.map(\.element.session)
        }
    }

    /// The length of the longest of the session's path prefixes that serves `path`, or nil if none does.
    private static func longestPrefix(of session: EdgeTunnelSession, serving path: String) -> Int? {
        var best: Int?
        for prefix in session.pathPrefixes where path.isUnderPathPrefix(prefix) {
            best = max(best ?? 0, prefix.utf8.count)
        }
        return best
    }

    /// Ends every session of `domain` (it was unregistered, or its key rotated). Returns how many there were.
    @discardableResult
    public func closeSessions(for domain: String, reason: String) -> Int {
        let sessions = self.sessions(for: domain)
        for session in sessions { session.close(reason) }
        return sessions.count
    }
}

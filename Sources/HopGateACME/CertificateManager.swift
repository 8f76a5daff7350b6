import FoundationEssentials
import HopGateStore
import Logging
import ServiceLifecycle
import Synchronization

/// Keeps a certificate for the main domain and every registered domain, as a Service.
///
/// Every `refreshInterval` (with jitter) it reads the store: certificates that another process stored (another
/// edge, `hopgate cert renew`) are installed, names with no certificate or with less than a third of its lifetime
/// left are ordered. A newly registered domain wakes it at once. A failed order is retried with exponential backoff;
/// meanwhile the old certificate stays in service. Of several edges on one database only the holder of a name's
/// lease orders it; the others install the result from the store.
public final class CertificateManager: Service {
    public struct Schedule: Sendable {
        /// How often the store is read again.
        public var refreshInterval: Duration = .seconds(30)
        /// The wait after a first failed order; it doubles with each further failure, up to `maximumRetryDelay`.
        public var retryDelay: Duration = .seconds(60)
        public var maximumRetryDelay: Duration = .seconds(6 * 3600)
        /// How long one edge may hold a name's order to itself (longer than any order takes).
        public var leaseDuration: Duration = .seconds(600)

        public init() {}
    }

    /// A snapshot for metrics.
    public struct Status: Sendable {
        public var certificates = 0
        /// Seconds until the soonest expiry among served certificates.
        public var soonestExpirySeconds: Double?
        public var ordersSucceeded = 0
        public var ordersFailed = 0
    }

    private struct Failure {
        var count: Int
        var nextAttempt: ContinuousClock.Instant
    }

    private let issuer: CertificateIssuer
    private let store: any DomainStore
    private let mainDomain: String
    private let schedule: Schedule
    private let logger: Logger
    private let install: @Sendable (CertificateRecord) throws -> Void
    private let holder = UUID().uuidString
    private let wakeRequested = Atomic<Bool>(false)
    private let state = Mutex(Status())

    /// - Parameter install: puts a certificate in service (the HTTPS listener's SNI table); called from the
    ///   manager's task.
    public init(
        issuer: CertificateIssuer,
        store: any DomainStore,
        mainDomain: String,
        schedule: Schedule = Schedule(),
        logger: Logger,
        install: @escaping @Sendable (CertificateRecord) throws -> Void
    ) {
        self.issuer = issuer
        self.store = store
        self.mainDomain = mainDomain.lowercased()
        self.schedule = schedule
        self.logger = logger
        self.install = install
    }

    public var status: Status { state.withLock { $0 } }

    /// Looks at the store again now instead of at the next interval (a domain was just registered).
    public func wake() { wakeRequested.store(true, ordering: .relaxed) }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var served: [String: CertificateRecord] = [:]
            var failures: [String: Failure] = [:]
            while !Task.isCancelled {
                self.wakeRequested.store(false, ordering: .relaxed)
                await self.pass(served: &served, failures: &failures)
                try await self.sleepUntilNextPass()
            }
        }
    }

    /// One look at the store: install what changed, order what is missing or due.
    private func pass(served: inout [String: CertificateRecord], failures: inout [String: Failure]) async {
        let stored: [CertificateRecord]
        let names: [String]
        do {
            stored = try await store.allCertificates()
            names = [mainDomain] + (try await store.allDomains()).map(\.domain.value).filter { $0 != mainDomain }
        } catch {
            logger.error("cannot read certificates and domains from the store", metadata: ["error": "\(error)"])
            return
        }
        for record in stored where served[record.domain]?.serialNumber != record.serialNumber {
            putInService(record, served: &served)
        }
        let now = Date()
        for name in names where Self.needsCertificate(served[name], now: now) {
            if let failure = failures[name], ContinuousClock.now < failure.nextAttempt { continue }
            if Task.isCancelled { return }
            do {
                guard let record = try await order(name) else { continue }
                failures[name] = nil
                state.withLock { $0.ordersSucceeded += 1 }
                putInService(record, served: &served)
            } catch {
                let count = (failures[name]?.count ?? 0) + 1
                var delay = min(schedule.retryDelay * (1 << min(count - 1, 20)), schedule.maximumRetryDelay)
                if let asked = (error as? ACMEError)?.retryAfter, asked > delay { delay = asked }
                delay = delay * Double.random(in: 0.9...1.1)
                failures[name] = Failure(count: count, nextAttempt: .now + delay)
                state.withLock { $0.ordersFailed += 1 }
                var metadata: Logger.Metadata = [
                    "domain": "\(name)", "error": "\(error)", "attempt": "\(count)",
                    "retry_in_seconds": "\(Int((delay / .seconds(1)).rounded()))",
                ]
                if let old = served[name] {
                    metadata["serving"] = "the old certificate, valid until \(old.notAfter)"
                } else {
                    metadata["serving"] = "no certificate for this name yet"
                }
                logger.error("cannot get a certificate", metadata: metadata)
            }
        }
        state.withLock { status in
            status.certificates = served.count
            status.soonestExpirySeconds = served.values.map { $0.notAfter.timeIntervalSinceNow }.min()
        }
    }

    /// Orders `name` while holding its lease; nil when another edge holds it (its result arrives through the store).
    private func order(_ name: String) async throws -> CertificateRecord? {
        let lease = "certificate:\(name)"
        let expiry = Date().addingTimeInterval(Double(schedule.leaseDuration.components.seconds))
        guard try await store.acquireLease(name: lease, holder: holder, expiresAt: expiry) else {
            logger.debug("another edge is ordering this certificate", metadata: ["domain": "\(name)"])
            return nil
        }
        logger.info("ordering a certificate", metadata: ["domain": "\(name)"])
        do {
            let record = try await issuer.issue(for: name)
            try? await store.releaseLease(name: lease, holder: holder)
            return record
        } catch {
            try? await store.releaseLease(name: lease, holder: holder)
            throw error
        }
    }

    private func putInService(_ record: CertificateRecord, served: inout [String: CertificateRecord]) {
        do {
            try install(record)
            served[record.domain] = record
            logger.info(
                "serving certificate",
                metadata: [
                    "domain": "\(record.domain)", "serial": "\(record.serialNumber)",
                    "not_after": "\(record.notAfter)", "issuer": "\(record.issuer)",
                ]
            )
        } catch {
            logger.error(
                "a stored certificate cannot be used; ignoring it",
                metadata: ["domain": "\(record.domain)", "error": "\(error)"]
            )
        }
    }

    /// Missing, or less than a third of its lifetime left.
    public static func needsCertificate(_ record: CertificateRecord?, now: Date) -> Bool {
        guard let record else { return true }
        let lifetime = record.notAfter.timeIntervalSince(record.notBefore)
        return record.notAfter.timeIntervalSince(now) < lifetime / 3
    }

    /// Sleeps the refresh interval with ±10% jitter (so that edges started together spread out), or less when woken.
    private func sleepUntilNextPass() async throws {
        let total = schedule.refreshInterval * Double.random(in: 0.9...1.1)
        let step = Duration.milliseconds(200)
        var slept = Duration.zero
        while slept < total && !wakeRequested.load(ordering: .relaxed) {
            try await Task.sleep(for: step)
            slept += step
        }
    }
}

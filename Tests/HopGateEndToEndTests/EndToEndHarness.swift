import Foundation
import HopGateTestSupport
import Testing

/// A real edge (`hopgate serve --dev` on loopback with ports the kernel picks), its store in a temporary SQLite
/// file, and helpers to register domains, start clients and run curl against it.
final class EdgeUnderTest: Sendable {
    static let adminKey = String(repeating: "ad", count: 32)

    let process: BackgroundProcess
    let directory: String
    let https: Int
    let http: Int
    let dtls: Int
    let metrics: Int
    let fingerprint: String
    let environment: [String: String]

    /// A second edge on the same store and ports as `previous` (stopped by now): an edge restart.
    convenience init(reusing previous: EdgeUnderTest) async throws {
        try await self.init(directory: previous.directory, ports: (previous.https, previous.http, previous.dtls))
    }

    init(
        extraArguments: [String] = [],
        directory existing: String? = nil,
        ports: (https: Int, http: Int, dtls: Int) = (0, 0, 0)
    ) async throws {
        directory = try existing ?? makeTemporaryDirectory("hopgate-e2e")
        var environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("HOPGATE_") && !$0.key.hasPrefix("HOP_")
        }
        environment["HOPGATE_DATABASE"] = "sqlite:\(directory)/hopgate.db"
        environment["HOPGATE_LOG_FORMAT"] = "json"
        self.environment = environment
        process = try BackgroundProcess(
            HopGateBinary.path,
            [
                "serve", "--dev", "--https-listen", "127.0.0.1:\(ports.https)", "--http-listen",
                "127.0.0.1:\(ports.http)", "--dtls-listen", "127.0.0.1:\(ports.dtls)", "--metrics-listen",
                "127.0.0.1:0",
                "--admin-key", Self.adminKey,
            ] + extraArguments,
            environment: environment,
            name: "edge"
        )
        let output = try await process.waitForOutput(containing: "\"edge listening\"")
        let line = try #require(output.split(separator: "\n").first { $0.contains("\"edge listening\"") })
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        func port(_ key: String) throws -> Int {
            let text = try #require(fields[key] as? String, "no \(key) in \(line)")
            return try #require(Int(text.split(separator: ":").last ?? ""))
        }
        https = try port("https")
        http = try port("http")
        dtls = try port("dtls")
        metrics = try port("metrics")
        let banner = try await process.waitForOutput(containing: "certificate sha256")
        let range = try #require(banner.range(of: "certificate sha256 "))
        fingerprint = String(banner[range.upperBound...].prefix { $0.isHexDigit || $0 == ":" })
    }

    /// Registers `domain` through the CLI on the edge's store; returns its client API key.
    func register(_ domain: String) async throws -> String {
        let result = try await HopGateBinary.run(["domain", "add", domain, "--json"], environment: storeEnvironment)
        #expect(result.status == 0, "\(result.standardError)")
        let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        return try #require(object?["client_api_key"] as? String)
    }

    var storeEnvironment: [String: String] { ["HOPGATE_DATABASE": environment["HOPGATE_DATABASE"]!] }

    /// Starts `hopgate connect` for `domain` and waits until it is connected (unless `waitForConnected` is false).
    func connect(
        domain: String,
        key: String,
        arguments: [String],
        waitForConnected: Bool = true,
        serverPort: Int? = nil
    ) async throws -> BackgroundProcess {
        let client = try BackgroundProcess(
            HopGateBinary.path,
            [
                "connect", "--server", "127.0.0.1:\(serverPort ?? dtls)", "--server-fingerprint", fingerprint,
                "--domain", domain,
                "--key", key,
            ] + arguments,
            environment: environment,
            name: "client for \(domain)"
        )
        if waitForConnected {
            try await client.waitForOutput(containing: "\"connected\"")
            // The edge routes to a session once SCTP is up, a moment after the client hears Welcome.
            try await waitUntilRoutable(domain)
        }
        return client
    }

    /// Waits until the edge's admin API shows a session for `domain`.
    func waitUntilRoutable(_ domain: String) async throws {
        for _ in 0..<100 {
            let status = try await curl(
                [
                    "-H", "Authorization: Bearer \(Self.adminKey)",
                    "https://edge.localhost:\(https)/api/v1/admin/domains/\(domain)",
                ],
                host: "edge.localhost"
            )
            if status.body.contains("\"connected\":true") { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerError("no session for \(domain) reached the edge's registry")
    }

    struct CurlResult {
        let status: Int
        let body: String
        let standardError: String
    }

    /// Runs curl with `arguments`, resolving `host` to 127.0.0.1 on the edge's ports; the last line of its output
    /// is the status code (`-w`).
    func curl(_ arguments: [String], host: String? = nil, outputFile: String? = nil) async throws -> CurlResult {
        // HTTP/1.1 unless a test asks for --http2: most checks here are about HTTP/1 framing.
        var all = ["-sS", "-k", "--max-time", "120", "-w", "\n%{http_code}"]
        if !arguments.contains("--http2") { all.append("--http1.1") }
        if let host {
            all += ["--resolve", "\(host):\(https):127.0.0.1", "--resolve", "\(host):\(http):127.0.0.1"]
        }
        if let outputFile { all += ["-o", outputFile] }
        all += arguments
        let curlArguments = all
        let result = try await offload { try runProcess("/usr/bin/curl", curlArguments) }
        let lines = result.standardOutput.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        return CurlResult(
            status: status,
            body: lines.dropLast().joined(separator: "\n").trimmingCharacters(in: .newlines),
            standardError: result.standardError
        )
    }

    func url(_ host: String, _ path: String) -> String { "https://\(host):\(https)\(path)" }

    /// Downloads `count` bytes from app.localhost's `/bytes`, spread over 3 s, and runs `interrupt` 1 s into it.
    /// Returns curl's result and whether the file holds exactly the bytes sent.
    func slowDownload(count: Int, interrupt: () -> Void) async throws -> (CurlResult, verdict: String) {
        let download = directory + "/slow"
        async let result = curl(
            [url("app.localhost", "/bytes?n=\(count)&delay=3")],
            host: "app.localhost",
            outputFile: download
        )
        try await Task.sleep(for: .seconds(1))
        interrupt()
        let finished = try await result
        return (finished, try await verifyDownloadedBytes(download, count: count))
    }

    func stop() async {
        await process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Checks a downloaded file against what `/bytes?n=N` sends, in Python (fast for hundreds of megabytes).
func verifyDownloadedBytes(_ path: String, count: Int) async throws -> String {
    let script = """
        import sys
        pattern = bytes((i * 7) % 251 for i in range(251 * 300))
        n = int(sys.argv[2]); position = 0
        with open(sys.argv[1], "rb") as f:
            while True:
                block = f.read(1 << 20)
                if not block: break
                offset = position % 251
                expected = (pattern[offset:] + pattern * ((len(block) // len(pattern)) + 2))[:len(block)]
                if block != expected:
                    print(f"mismatch in the block at {position}"); sys.exit(1)
                position += len(block)
        print("ok" if position == n else f"short: {position} of {n}")
        """
    let result = try await offload { try runProcess("/usr/bin/python3", ["-c", script, path, "\(count)"]) }
    return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) + result.standardError
}

/// Runs `body` while sampling `pid`'s resident memory every 100 ms: its result, and how many MiB the peak was above
/// the memory before it began (the baseline is in MiB too, 0 when it cannot be read).
func residentGrowth<T: Sendable>(
    of pid: pid_t,
    during body: () async throws -> T
) async rethrows -> (result: T, baselineMiB: Int, growthMiB: Int) {
    let baseline = residentKiB(of: pid)
    let sampler = Task {
        var peak = 0
        while !Task.isCancelled {
            peak = max(peak, residentKiB(of: pid))
            try? await Task.sleep(for: .milliseconds(100))
        }
        return peak
    }
    let result = try await body()
    sampler.cancel()
    return (result, baseline / 1024, (await sampler.value - baseline) / 1024)
}

/// A process's resident memory in KiB (Linux), or 0 when it cannot be read.
func residentKiB(of pid: pid_t) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}

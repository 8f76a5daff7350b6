import Foundation

/// A throwaway PostgreSQL server on a loopback port, started for real from the Debian packages.
///
/// Tests own the server rather than expecting one: they must stop and restart it to show what HopGate does when
/// its database goes away. Set HOPGATE_TEST_POSTGRES_URL to use an existing server for the shared instance.
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    private let directory: String
    private let binaries: String
    private let lock = NSLock()
    private var running = false

    /// Creates a cluster with `initdb` and starts it.
    public init() throws {
        binaries = try Self.findBinaries()
        directory = try makeTemporaryDirectory("hopgate-pg")
        port = try freeLoopbackPort()
        let data = directory + "/data"
        try Self.asPostgresUser(
            binaries + "/initdb",
            [
                "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=trust", "-E", "UTF8",
                "--locale=C.UTF-8",
            ],
            directory: directory
        )
        try start()
        Self.registerForCleanup(self)
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    public func url(database: String = "postgres") -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)"
    }

    /// Starts the server, trying up to three times.
    ///
    /// A restart right after `stop()` failed once under the full suite's load (`pg_ctl start` gave up after 4 s),
    /// and the log that would have said why went with the server's directory. A failed start is retried a second
    /// later, and the last failure's message carries the end of the server's log.
    public func start() throws {
        try lock.withLock {
            guard !running else { return }
            var attempt = 1
            while true {
                do {
                    try Self.asPostgresUser(
                        binaries + "/pg_ctl",
                        [
                            "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "30", "-o",
                            "-p \(port) -c listen_addresses=127.0.0.1 -k \(directory) -c fsync=off", "start",
                        ],
                        directory: directory
                    )
                    break
                } catch {
                    guard attempt < 3 else { throw ServerError("\(error)\nserver.log ends:\n\(logTail())") }
                    attempt += 1
                    Thread.sleep(forTimeInterval: 1)
                }
            }
            running = true
        }
    }

    private func logTail(lines: Int = 20) -> String {
        let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? "(no server.log)"
        return log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Stops the server at once (`-m immediate`), as a crash or a pulled cable would look to a client.
    public func stop() throws {
        try lock.withLock {
            guard running else { return }
            try Self.asPostgresUser(
                binaries + "/pg_ctl",
                ["-D", directory + "/data", "-w", "-m", "immediate", "stop"],
                directory: directory
            )
            running = false
        }
    }

    /// Creates a new empty database with a unique name and returns its URL.
    public func makeDatabase() throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try sql("CREATE DATABASE \(name)")
        return url(database: name)
    }

    /// Runs SQL with psql against `database`; returns psql's unaligned output.
    @discardableResult
    public func sql(_ statement: String, database: String = "postgres") throws -> String {
        let output = try runProcess(
            binaries + "/psql",
            ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url(database: database), "-c", statement]
        )
        guard output.status == 0 else { throw ServerError("psql failed: \(output.standardError)") }
        return output.standardOutput
    }

    // MARK: - The shared instance

    /// One server for every test that only needs a database; started on first use.
    public static func sharedURL() throws -> String {
        if let url = ProcessInfo.processInfo.environment["HOPGATE_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        return try sharedLock.withLock {
            if let shared = sharedServer { return try shared.makeDatabase() }
            let server = try PostgresServer()
            sharedServer = server
            return try server.makeDatabase()
        }
    }

    nonisolated(unsafe) private static var sharedServer: PostgresServer?
    private static let sharedLock = NSLock()

    // MARK: - Process plumbing

    private static func findBinaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw ServerError("no PostgreSQL server under \(root): apt-get install postgresql (scripts/install-deps)")
        }
        return "\(root)/\(newest)/bin"
    }

    /// PostgreSQL refuses to run as root, so as root its programs run as the `postgres` user.
    private static func asPostgresUser(_ program: String, _ arguments: [String], directory: String) throws {
        let output: ProcessOutput
        if geteuid() == 0 {
            _ = try runProcess("/bin/chown", ["-R", "postgres:postgres", directory])
            output = try runProcess("/usr/sbin/runuser", ["-u", "postgres", "--", program] + arguments)
        } else {
            output = try runProcess(program, arguments)
        }
        guard output.status == 0 else {
            throw ServerError("\(program) failed (\(output.status)): \(output.standardError)\(output.standardOutput)")
        }
    }

    // Servers must not outlive the test process: stop every one still running when it exits.
    nonisolated(unsafe) private static var live: [PostgresServer] = []
    private static let liveLock = NSLock()

    private static func registerForCleanup(_ server: PostgresServer) {
        liveLock.withLock {
            if live.isEmpty {
                atexit {
                    for server in PostgresServer.live {
                        try? server.stop()
                        try? FileManager.default.removeItem(atPath: server.directory)
                    }
                }
            }
            live.append(server)
        }
    }

    /// Stops the server and removes its files.
    public func destroy() {
        try? stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

public struct ServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

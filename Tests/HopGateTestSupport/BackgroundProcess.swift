import Foundation
import Synchronization

/// A long-running child process (an edge, a client, a local web server): started, its output in files that can be
/// read while it runs, signalled, waited for, and killed if the test forgets.
public final class BackgroundProcess: Sendable {
    public let pid: pid_t
    public let name: String
    private let outputPath: String
    private let errorPath: String
    private let directory: String
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments` and exactly `environment`.
    public init(_ executable: String, _ arguments: [String], environment: [String: String], name: String) throws {
        directory = try makeTemporaryDirectory("hopgate-bg")
        outputPath = directory + "/out"
        errorPath = directory + "/err"
        self.name = name
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for string in argv + envp { free(string) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw ServerError("cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        self.pid = pid
    }

    deinit {
        if exitStatus.withLock({ $0 }) == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public var standardOutput: String { Self.read(outputPath) }
    public var standardError: String { Self.read(errorPath) }

    private static func read(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Whether it has exited (reaping it if so).
    public var hasExited: Bool {
        if exitStatus.withLock({ $0 }) != nil { return true }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return false }
        exitStatus.withLock { $0 = Self.decode(status) }
        return true
    }

    /// Waits up to `timeout` for it to exit; its exit status, or nil if it is still running.
    public func waitForExit(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if hasExited { return exitStatus.withLock { $0 } }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Waits up to `timeout` until its output (stdout and stderr) contains `text`; returns that output.
    @discardableResult
    public func waitForOutput(containing text: String, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let all = standardOutput + standardError
            if all.contains(text) { return all }
            if hasExited {
                throw ServerError("\(name) exited before printing '\(text)':\n\(all)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerError("\(name) did not print '\(text)' within \(timeout):\n\(standardOutput + standardError)")
    }

    /// Stops it: SIGTERM, then SIGKILL after `grace`.
    public func stop(grace: Duration = .seconds(5)) async {
        signal(SIGTERM)
        if (try? await waitForExit(timeout: grace)) ?? nil == nil {
            signal(SIGKILL)
            _ = try? await waitForExit(timeout: .seconds(5))
        }
    }

    private static func decode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

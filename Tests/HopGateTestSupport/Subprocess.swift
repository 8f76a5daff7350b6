import Foundation
import Synchronization

/// What a finished child process left behind.
public struct ProcessOutput: Sendable {
    public let status: Int32
    public let standardOutput: String
    public let standardError: String
}

/// Runs a program to completion, feeding `input` (or nothing) on standard input, and collects its output.
///
/// posix_spawn and waitpid rather than Foundation's Process: Process.waitUntilExit was seen to miss a child's
/// exit when tests spawn processes from several threads at once. Output goes through files, not pipes, so a
/// child that leaves a daemon behind (pg_ctl start) cannot hold the output open.
public func runProcess(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String]? = nil,
    input: String? = nil
) throws -> ProcessOutput {
    let directory = try makeTemporaryDirectory("hopgate-run")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let inputPath = directory + "/in"
    let outputPath = directory + "/out"
    let errorPath = directory + "/err"
    try Data((input ?? "").utf8).write(to: URL(fileURLWithPath: inputPath))

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

    let environment = environment ?? ProcessInfo.processInfo.environment
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for string in argv + envp { free(string) } }

    var pid = pid_t()
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
    guard spawned == 0 else { throw ServerError("cannot start \(executable): \(String(cString: strerror(spawned)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw ServerError("waitpid failed for \(executable)") }
    }
    // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
    let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    func read(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }
    return ProcessOutput(status: exitStatus, standardOutput: read(outputPath), standardError: read(errorPath))
}

/// A fresh directory under the system temporary directory, world-readable so a server run as another user
/// (PostgreSQL refuses to run as root) can use it.
public func makeTemporaryDirectory(_ prefix: String) throws -> String {
    var template = Array((NSTemporaryDirectory() + "/\(prefix).XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
    let path = String(cString: made)
    chmod(path, 0o755)
    return path
}

/// A port on 127.0.0.1 that was free a moment ago for both TCP and UDP (an edge listens on both with one number,
/// and so does pebble-challtestsrv's DNS). It is picked below the kernel's ephemeral range, so that no port 0 bind
/// and no outgoing connection of another test can take it before the process it is meant for binds it, and never
/// twice in one test run: two tests running at once drew the same random port (one edge then failed with "address
/// already in use" on its metrics listener).
public func freeLoopbackPort() throws -> Int {
    for _ in 0..<50 {
        let port = try boundableLoopbackPort()
        if claimedPorts.withLock({ $0.insert(port).inserted }) { return port }
    }
    throw POSIXError(.EADDRINUSE)
}

/// Every port `freeLoopbackPort` handed out in this process.
private let claimedPorts = Mutex<Set<Int>>([])

private func boundableLoopbackPort() throws -> Int {
    let ephemeralStart =
        (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
        .flatMap { $0.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } } ?? 32768
    if ephemeralStart > 12_000 {
        for _ in 0..<200 {
            let port = Int.random(in: 10_000..<ephemeralStart)
            if (try? bindLoopback(type: SOCK_STREAM, port: port)) != nil,
                (try? bindLoopback(type: SOCK_DGRAM, port: port)) != nil
            {
                return port
            }
        }
    }
    for _ in 0..<50 {
        let port = try bindLoopback(type: SOCK_STREAM, port: 0)
        if (try? bindLoopback(type: SOCK_DGRAM, port: port)) != nil { return port }
    }
    throw POSIXError(.EADDRINUSE)
}

/// Binds a socket of `type` to 127.0.0.1:`port` (0: any), closes it, and returns the port it had.
private func bindLoopback(type: __socket_type, port: Int) throws -> Int {
    let descriptor = socket(AF_INET, Int32(type.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.EIO) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int32 in
            guard bind(descriptor, raw, length) == 0 else { return -1 }
            return getsockname(descriptor, raw, &length)
        }
    }
    guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs blocking work (a child process, a socket read, pg_ctl) on a thread of its own, so it never holds one of the
/// few threads that every test's async work shares: blocking them stalls unrelated tests into timeouts. Not a
/// dispatch queue: on Linux Swift's tasks run on libdispatch's worker threads too, which it adds only slowly when
/// work blocks them. With 40 blocked dispatch workers, a DTLS test that takes 0.02 s alone ran into its 2-minute
/// limit, waiting for its echo server's task.
public func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

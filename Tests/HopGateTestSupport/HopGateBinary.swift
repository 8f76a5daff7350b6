import Foundation

/// The built `hopgate` executable, run as a user would run it.
public enum HopGateBinary {
    /// HOPGATE_BINARY, or `hopgate` beside the test bundle in the build folder.
    public static var path: String {
        if let path = ProcessInfo.processInfo.environment["HOPGATE_BINARY"], !path.isEmpty { return path }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        // The test runner may be inside `X.xctest/` or beside it.
        for _ in 0..<3 {
            let candidate = directory.appendingPathComponent("hopgate").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return bundle.deletingLastPathComponent().appendingPathComponent("hopgate").path
    }

    /// Runs `hopgate ARGUMENTS` with `environment` added to a clean environment (no HOPGATE_* from outside).
    public static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        input: String? = nil
    ) async throws -> ProcessOutput {
        var base = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("HOPGATE_") && !$0.key.hasPrefix("HOP_")
        }
        base.merge(environment) { _, new in new }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ServerError("no hopgate binary at \(path): run `swift build` first, or set HOPGATE_BINARY")
        }
        let (path, merged) = (self.path, base)
        return try await offload { try runProcess(path, arguments, environment: merged, input: input) }
    }
}

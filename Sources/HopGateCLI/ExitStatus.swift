import ArgumentParser
import HopGateCore

/// The exit codes scripts can rely on (BSD sysexits where one fits), one per `HopGateError.Code`.
enum ExitStatus {
    static func code(for error: HopGateError.Code) -> Int32 {
        switch error {
        case .invalidInput: 65
        case .notFound: 66
        case .databaseUnavailable: 69
        case .alreadyExists: 73
        case .temporaryFailure: 75
        case .permissionDenied: 77
        case .configuration: 78
        default: 1
        }
    }

    /// The table shown in `--help` and the man page.
    static let table = """
          0  success
          1  any other failure
         64  usage: an unknown flag, a missing or malformed option or argument
         65  invalid input: a malformed domain name, memo or key
         66  not found: the domain is not registered
         69  database unavailable: unreachable, or the connection was lost
         73  already exists: the domain is registered already
         75  temporary failure: the database is busy; try again later
         77  permission denied: the client API key does not match
         78  configuration: a bad database URL, or run `hopgate migrate`
        """
}

/// Runs a command body, turning a `HopGateError` into `error: <message>` on standard error and its exit code.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as HopGateError {
        printToStandardError("error: \(error.message)")
        throw ExitCode(ExitStatus.code(for: error.code))
    }
}

/// An error a person can act on, with a code that scripts can rely on.
///
/// Every layer throws this one type for the failures an operator must see, so the CLI maps each to a documented
/// exit code in one place and the admin API (a later issue) maps each to an HTTP status in one place.
public struct HopGateError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; it decides the exit code and, later, the HTTP status.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable {
            case invalidInput = "invalid_input"
            case notFound = "not_found"
            case alreadyExists = "already_exists"
            case permissionDenied = "permission_denied"
            case databaseUnavailable = "database_unavailable"
            case temporaryFailure = "temporary_failure"
            case configuration = "configuration"
            case internalError = "internal"
        }
        fileprivate let base: Base

        /// A value given by the user is malformed (a domain name, a memo, a key).
        public static let invalidInput = Code(base: .invalidInput)
        /// The thing named does not exist (an unregistered domain).
        public static let notFound = Code(base: .notFound)
        /// The thing to create exists already (a duplicate domain).
        public static let alreadyExists = Code(base: .alreadyExists)
        /// A credential did not match (a wrong client API key).
        public static let permissionDenied = Code(base: .permissionDenied)
        /// The database cannot be reached or was lost.
        public static let databaseUnavailable = Code(base: .databaseUnavailable)
        /// A failure that may pass by itself (a locked database); trying again later may work.
        public static let temporaryFailure = Code(base: .temporaryFailure)
        /// The setup is wrong (a bad database URL, a schema that needs `hopgate migrate`).
        public static let configuration = Code(base: .configuration)
        /// A bug or an unexpected failure of a library.
        public static let internalError = Code(base: .internalError)

        /// The stable machine name, as used in JSON error bodies.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// One or two sentences for a person: what went wrong and, where possible, what to do.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

extension HopGateError: Equatable {
    /// Errors are equal by code: messages may be reworded without breaking callers.
    public static func == (lhs: HopGateError, rhs: HopGateError) -> Bool { lhs.code == rhs.code }
}

/// The operator's free-text note on a domain ("staging API, owner: ops").
///
/// It is shown in tables and logs, so it is one line: control characters (newlines, tabs, escapes) are refused,
/// and it is at most `maximumLength` characters so a listing stays readable.
public struct Memo: Hashable, Sendable, CustomStringConvertible {
    /// The documented limit, in characters (extended grapheme clusters).
    public static let maximumLength = 256

    public let value: String

    public init(validating text: String) throws {
        if text.count > Self.maximumLength {
            throw HopGateError(
                .invalidInput,
                "the memo is \(text.count) characters long; the limit is \(Self.maximumLength)"
            )
        }
        if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw HopGateError(.invalidInput, "the memo must be one line without control characters")
        }
        self.value = text
    }

    /// The empty memo, for domains registered without one.
    public static let empty = Memo(trusted: "")

    private init(trusted: String) { self.value = trusted }

    public var description: String { value }
}

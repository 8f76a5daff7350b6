/// A secret key: 32 bytes from the system CSPRNG, written as 64 lowercase hexadecimal characters.
///
/// Used for client API keys and admin keys. Its `description` is redacted (first four and last four characters)
/// so a key that ends up in a log line or an error message is never shown whole.
public struct APIKey: Hashable, Sendable, CustomStringConvertible {
    /// 32 bytes (256 bits) of entropy: far beyond guessing, and the same size as the seed's 64-character keys.
    public static let byteCount = 32
    /// The text form's length: two hex digits a byte.
    public static let textLength = byteCount * 2

    /// The full key. Print it only where the user asked to see it once.
    public let secret: String

    /// Makes a new key. `SystemRandomNumberGenerator` reads the kernel's CSPRNG (getrandom on Linux).
    public static func generate() -> APIKey {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return APIKey(trusted: Hex.encode(bytes))
    }

    /// Accepts a key typed or pasted by a person: surrounding white space is ignored, hex digits may be upper case.
    public init(validating text: String) throws {
        let trimmed = text.trimmingWhitespace().lowercased()
        guard trimmed.count == Self.textLength, trimmed.allSatisfy(\.isHexDigit) else {
            throw HopGateError(
                .invalidInput,
                "a key is \(Self.textLength) hexadecimal characters (from `hopgate keygen`); "
                    + "this one has \(trimmed.count) characters"
            )
        }
        self.secret = trimmed
    }

    private init(trusted: String) { self.secret = trusted }

    /// The key as `abcd...wxyz`: enough to tell keys apart in a log, too little to use.
    public var redacted: String { "\(secret.prefix(4))...\(secret.suffix(4))" }

    public var description: String { redacted }
}

extension String {
    /// The string without leading and trailing spaces, tabs and line breaks (Foundation-free).
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}

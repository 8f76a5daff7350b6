extension StringProtocol {
    /// The text without the leading and trailing characters that `isTrimmed` accepts.
    public func trimming(while isTrimmed: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !isTrimmed($0) }) else { return "" }
        let last = lastIndex(where: { !isTrimmed($0) })!
        return String(self[first...last])
    }

    /// The text without leading and trailing whitespace (spaces, tabs, line breaks).
    public func trimmingWhitespace() -> String { trimming(while: \.isWhitespace) }
}

/// A registered domain: a lowercase fully qualified domain name in ASCII.
///
/// Names are compared and stored in exactly this form, so `Example.COM.` and `example.com` are one domain.
/// Non-ASCII names are refused rather than converted: IDNA mapping has corner cases (UTS #46 versus IDNA2008)
/// where two tools disagree, and a gateway that silently routed a different name than the one typed would be
/// worse than one that asks for the `xn--` form the operator's DNS already uses.
public struct DomainName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// RFC 1035 §2.3.4: 255 octets on the wire, which is 253 characters in text without the trailing dot.
    public static let maximumLength = 253
    /// RFC 1035 §2.3.4: a label is at most 63 octets.
    public static let maximumLabelLength = 63

    /// The normalised name: lowercase, no trailing dot.
    public let value: String

    /// Validates and normalises `text`, or throws an `.invalidInput` error that says what is wrong.
    public init(validating text: String) throws {
        func invalid(_ why: String) -> HopGateError {
            HopGateError(.invalidInput, "'\(text)' is not a valid domain name: \(why)")
        }
        if text.isEmpty { throw HopGateError(.invalidInput, "the domain name is empty") }
        if text.unicodeScalars.contains(where: { !$0.isASCII }) {
            throw invalid(
                "it contains non-ASCII characters; give its IDNA ASCII form (xn--...), for example from `idn2`"
            )
        }
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if name.count > Self.maximumLength {
            throw invalid("it is \(name.count) characters long; the limit is \(Self.maximumLength)")
        }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count < 2 {
            throw invalid(
                "it needs at least two labels, like example.com (single names such as localhost are not public)"
            )
        }
        for label in labels {
            if label.isEmpty { throw invalid("it has an empty label (two dots in a row, or a leading dot)") }
            if label.count > Self.maximumLabelLength {
                throw invalid("the label '\(label.prefix(20))...' is \(label.count) characters; the limit is 63")
            }
            if let bad = label.unicodeScalars.first(where: { !Self.isLabelCharacter($0) }) {
                let shown = bad == " " ? "a space" : "'\(bad.escaped(asASCII: true))'"
                throw invalid("\(shown) is not allowed; labels use letters, digits and hyphens")
            }
            if label.hasPrefix("-") || label.hasSuffix("-") {
                throw invalid("the label '\(label)' starts or ends with a hyphen")
            }
        }
        if labels.last!.allSatisfy(\.isNumber) {
            throw invalid("the last label is numeric; IP addresses are not domain names")
        }
        self.value = name
    }

    private static func isLabelCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "0"..."9", "-": return true
        default: return false
        }
    }

    public var description: String { value }

    public static func < (lhs: DomainName, rhs: DomainName) -> Bool { lhs.value < rhs.value }
}

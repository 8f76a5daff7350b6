import FoundationEssentials
import Glibc

/// The one textual form of a point in time that HopGate writes: RFC 3339 in UTC with microseconds,
/// `2026-11-27T21:30:00.123456Z`, and a parser for it and for the variants databases print back.
public enum Timestamp {
    /// The current time at the precision the stores keep (microseconds), so a value returned to a caller equals
    /// the value read back later.
    public static func now() -> Date {
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
    }

    /// `date` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Microseconds are what PostgreSQL's timestamptz keeps.
    public static func format(_ date: Date, fractionDigits: Int = 6) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = time_t(micros.floorDivided(by: 1_000_000))
        let fraction = micros - Int64(seconds) * 1_000_000
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var text = "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
        text += "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
        if fractionDigits > 0 {
            var scaled = fraction
            for _ in fractionDigits..<6 { scaled /= 10 }
            text += "." + pad(Int(scaled), fractionDigits)
        }
        return text + "Z"
    }

    /// Parses `YYYY-MM-DD[T ]HH:MM:SS[.f...][Z|+HH|+HH:MM|-HH:MM]`; no offset means UTC. PostgreSQL prints
    /// timestamptz as `2026-11-27 21:30:00.5+00` in a UTC session; what this file writes parses back exactly.
    public static func parse(_ text: String) -> Date? {
        let chars = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= chars.count else { return nil }
            var value = 0
            for _ in 0..<digits {
                let c = chars[index]
                guard c >= 0x30, c <= 0x39 else { return nil }
                value = value * 10 + Int(c - 0x30)
                index += 1
            }
            return value
        }
        func expect(_ options: String) -> Bool {
            guard index < chars.count, options.utf8.contains(chars[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("T "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2)
        else { return nil }
        var micros = 0
        if index < chars.count, chars[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < chars.count, chars[index] >= 0x30, chars[index] <= 0x39 {
                if digits < 6 { micros = micros * 10 + Int(chars[index] - 0x30) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 6)..<6 { micros *= 10 }
        }
        var offsetSeconds = 0
        if index < chars.count {
            if chars[index] == UInt8(ascii: "Z") {
                index += 1
            } else {
                let sign = chars[index] == UInt8(ascii: "-") ? -1 : 1
                guard expect("+-"), let hours = number(2) else { return nil }
                var minutes = 0
                if index < chars.count {
                    _ = expect(":")
                    guard let m = number(2) else { return nil }
                    minutes = m
                }
                offsetSeconds = sign * (hours * 3600 + minutes * 60)
            }
        }
        guard index == chars.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = Int64(timegm(&parts)) - Int64(offsetSeconds)
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    /// Parses an HTTP date in its one current form (IMF-fixdate, RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
    /// The two obsolete forms the RFC also lists are not read: a caller treats nil as no date.
    public static func parseHTTPDate(_ text: String) -> Date? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: false)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard fields.count == 6, fields[0].count == 4, fields[0].hasSuffix(","), fields[4].count == 8,
            fields[5] == "GMT", let month = months.firstIndex(of: String(fields[2])).map({ $0 + 1 })
        else { return nil }
        // The same fields in RFC 3339's order: parse checks the digits and every range.
        return parse("\(fields[3])-\(month < 10 ? "0" : "")\(month)-\(fields[1])T\(fields[4])Z")
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

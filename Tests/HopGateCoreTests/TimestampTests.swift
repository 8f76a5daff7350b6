import Foundation
import HopGateCore
import Testing

@Suite struct TimestampTests {
    @Test func formatsUTCWithMicroseconds() {
        let date = Date(timeIntervalSince1970: 1_795_000_000.123456)
        #expect(Timestamp.format(date) == "2026-11-18T11:06:40.123456Z")
        #expect(Timestamp.format(date, fractionDigits: 3) == "2026-11-18T11:06:40.123Z")
        #expect(Timestamp.format(date, fractionDigits: 0) == "2026-11-18T11:06:40Z")
    }

    @Test func parsesHTTPDatesInTheirCurrentFormOnly() {
        #expect(
            Timestamp.parseHTTPDate("Sun, 06 Nov 1994 08:49:37 GMT")
                == Date(timeIntervalSince1970: 784_111_777)
        )
        #expect(Timestamp.parseHTTPDate("Wed, 31 Dec 2025 23:59:60 GMT") != nil)  // a leap second
        for text in [
            "Sunday, 06-Nov-94 08:49:37 GMT",  // RFC 850, obsolete
            "Sun Nov  6 08:49:37 1994",  // asctime, obsolete
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "",
        ] {
            #expect(Timestamp.parseHTTPDate(text) == nil, "\(text)")
        }
    }

    @Test func roundTrips() throws {
        for seconds in [0.0, 1.5, 1_795_000_000.000001, 4_102_444_800.999999] {
            let date = Date(timeIntervalSince1970: seconds)
            let parsed = try #require(Timestamp.parse(Timestamp.format(date)))
            #expect(abs(parsed.timeIntervalSince1970 - seconds) < 0.000002)
        }
    }

    @Test(arguments: [
        ("2026-11-18 11:06:40.5+00", 1_795_000_000.5),
        ("2026-11-18 11:06:40+00", 1_795_000_000.0),
        ("2026-11-18T12:06:40+01:00", 1_795_000_000.0),
        ("2026-11-18T06:06:40-0500", 1_795_000_000.0),
        ("2026-11-18T11:06:40.123456789Z", 1_795_000_000.123456),
        ("2026-11-18 11:06:40", 1_795_000_000.0),
    ])
    func parsesWhatDatabasesPrint(text: String, seconds: Double) throws {
        let parsed = try #require(Timestamp.parse(text))
        #expect(abs(parsed.timeIntervalSince1970 - seconds) < 0.000002)
    }

    @Test(arguments: [
        "", "2026-11-18", "2026-13-01 00:00:00", "2026-11-18T11:06:40.Z", "2026-11-18T11:06:40+",
        "x2026-11-18 11:06:40",
    ])
    func refusesGarbage(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }
}

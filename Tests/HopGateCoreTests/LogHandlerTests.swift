import Foundation
import HopGateCore
import Logging
import Synchronization
import Testing

@Suite struct LogHandlerTests {
    private func capture(_ format: LogFormat, _ body: (inout Logger) -> Void) -> [String] {
        let lines = Mutex<[String]>([])
        let sink = LogSink { line in lines.withLock { $0.append(line) } }
        var logger = Logger(label: "hopgate.test") { label in
            HopGateLogHandler(label: label, level: .info, format: format, sink: sink)
        }
        body(&logger)
        return lines.withLock { $0 }
    }

    @Test func jsonLinesCarryTheFieldsLogShippersExpect() throws {
        let lines = capture(.json) { logger in
            logger[metadataKey: "hopgate.session"] = "s1"
            logger.info("bound \"domain\"\nnext", metadata: ["hopgate.domain": "example.com", "n": "\(3)"])
            logger.debug("below the level")
        }
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line.hasSuffix("}\n") && !line.dropLast().contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["msg"] as? String == "bound \"domain\"\nnext")
        #expect(object["component"] as? String == "hopgate.test")
        #expect(object["hopgate.domain"] as? String == "example.com")
        #expect(object["hopgate.session"] as? String == "s1")
        let time = try #require(object["ts"] as? String)
        #expect(Timestamp.parse(time) != nil)
    }

    @Test func textLinesAreOneLineEach() throws {
        let lines = capture(.text) { logger in logger.warning("database unreachable", metadata: ["retry_in": "1s"]) }
        let line = try #require(lines.first)
        #expect(line.contains("warning [hopgate.test] database unreachable retry_in=1s"))
    }
}

import HopGateCore
import Testing

@Suite struct ASCIICaseTests {
    @Test func headerNamesCompareButForTheCaseOfASCIILetters() {
        #expect("Content-Length".equalsLowercaseASCII("content-length"))
        #expect("KEEP-ALIVE".equalsLowercaseASCII("keep-alive"))
        #expect("te".equalsLowercaseASCII("te"))
        #expect(!"Content-Lengths".equalsLowercaseASCII("content-length"))
        #expect(!"Trailer".equalsLowercaseASCII("trailers"))
        #expect(!"X-Upgrade".equalsLowercaseASCII("upgrade"))
        // Only ASCII letters fold: "É" is not "é", and "[" (0x5B) is not "{" (0x7B).
        #expect(!"É".equalsLowercaseASCII("é"))
        #expect(!"[".equalsLowercaseASCII("{"))
    }
}

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

    @Test func tokensAndFieldValuesAreWhatHTTPAllows() {
        #expect("Content-Type".isHTTPToken)
        #expect("x-custom_1.2~!#$%&'*+^`|".isHTTPToken)
        #expect(!"".isHTTPToken)
        #expect(!"X Space".isHTTPToken)
        #expect(!"X:Colon".isHTTPToken)
        #expect(!"Ünïcode".isHTTPToken)
        #expect("text/html; charset=utf-8".isHTTPFieldValue)
        #expect("a\tb".isHTTPFieldValue)
        #expect("välue ✓".isHTTPFieldValue)
        #expect("".isHTTPFieldValue)
        #expect(!"a\r\nSet-Cookie: x=1".isHTTPFieldValue)
        #expect(!"a\nb".isHTTPFieldValue)
        #expect(!"a\u{0}b".isHTTPFieldValue)
        #expect(!"a\u{7F}b".isHTTPFieldValue)
    }

    @Test func aPathPrefixServesItselfItsSubpathsAndItsQueries() {
        #expect("/admin".isUnderPathPrefix("/admin"))
        #expect("/admin/x".isUnderPathPrefix("/admin"))
        #expect("/admin?q".isUnderPathPrefix("/admin"))
        #expect(!"/administrator".isUnderPathPrefix("/admin"))
        #expect("/api/v1".isUnderPathPrefix("/api/"))
        #expect(!"/api".isUnderPathPrefix("/api/"))
        #expect("/anything".isUnderPathPrefix("/"))
        #expect("/café/menu".isUnderPathPrefix("/café"))
    }
}

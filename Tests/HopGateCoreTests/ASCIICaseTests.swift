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

    @Test func hopByHopFieldNamesAreKnownInAnyCaseAndNothingElseIs() {
        let hopByHop = [
            "Connection", "KEEP-ALIVE", "proxy-connection", "TE", "Trailer", "transfer-Encoding", "upgrade",
            "Proxy-Authenticate", "proxy-authorization",
        ]
        for name in hopByHop { #expect(name.isHopByHopFieldName, "\(name)") }
        let others = [
            "", "t", "tea", "Trailers", "Upgrades", "Content-Length", "proxy-connectio", "x-te", "Connectiox",
            "keep_alive", "Transfer-Encodings", "Proxy-Authenticat", "Authorization", "Set-Cookie",
        ]
        for name in others { #expect(!name.isHopByHopFieldName, "\(name)") }
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

    /// Every ASCII character against RFC 9110's lists, in a small string and in one too long to be stored inline.
    @Test func everyASCIICharacterIsJudgedAsTheRFCSays() {
        let tokenCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~".utf8)
        for byte in UInt8(0)..<128 {
            let character = String(UnicodeScalar(byte))
            let long = String(repeating: "a", count: 40) + character
            #expect(character.isHTTPToken == tokenCharacters.contains(byte), "byte \(byte)")
            #expect(long.isHTTPToken == tokenCharacters.contains(byte), "byte \(byte)")
            let allowed = byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
            #expect(character.isHTTPFieldValue == allowed, "byte \(byte)")
            #expect(long.isHTTPFieldValue == allowed, "byte \(byte)")
        }
        // A value in a substring's storage, as one cut from a larger string.
        let cut = "name: valu\re"
        #expect(!String(cut.utf8.dropFirst(6))!.isHTTPFieldValue)
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
        #expect(!"/cafés".isUnderPathPrefix("/café"))
        #expect("/".isUnderPathPrefix("/"))
        #expect("/anything/at/all?x=1".isUnderPathPrefix("/"))
        #expect("/admin/users".isUnderPathPrefix("/admin"))
        #expect("/admin?q=1".isUnderPathPrefix("/admin"))
        #expect(!"/adm".isUnderPathPrefix("/admin"))
    }
}

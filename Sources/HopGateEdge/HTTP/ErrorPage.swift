import FoundationEssentials
import HopGateCore
import NIOCore
import NIOHTTP1

/// A page the edge answers with itself (502, 504, 400, ...): HTML for browsers, JSON for API clients (by Accept),
/// in the same `{"error": {"code", "message"}}` shape as the admin API.
struct ErrorPage {
    let status: HTTPResponseStatus
    /// A stable machine-readable code, such as `no_tunnel`.
    let code: String
    let message: String

    func response(accept: String?) -> (HTTPHeaders, ByteBuffer) {
        let wantsJSON = (accept ?? "").contains("json") && !(accept ?? "").contains("text/html")
        var headers = HTTPHeaders()
        headers.add(name: "Cache-Control", value: "no-store")
        let body: String
        if wantsJSON {
            headers.add(name: "Content-Type", value: "application/json")
            body = JSONBody.error(code: code, message: message)
        } else {
            headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
            let title = "\(status.code) \(status.reasonPhrase)"
            body = """
                <!doctype html>
                <html><head><meta charset="utf-8"><title>\(Self.escape(title))</title></head>
                <body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
                <h1>\(Self.escape(title))</h1>
                <p>\(Self.escape(message))</p>
                <hr><p><small>HopGate</small></p>
                </body></html>

                """
        }
        let buffer = ByteBuffer(string: body)
        headers.add(name: "Content-Length", value: "\(buffer.readableBytes)")
        return (headers, buffer)
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "&": result += "&amp;"
            case "\"": result += "&quot;"
            default: result.append(character)
            }
        }
        return result
    }
}

/// JSON bodies written by hand: a few fixed shapes, so no encoder round trip.
enum JSONBody {
    static func error(code: String, message: String) -> String {
        "{\"error\":{\"code\":\(quote(code)),\"message\":\(quote(message))}}\n"
    }

    static func quote(_ text: String) -> String { JSONString.quoted(text) }
}

import Crypto
import FoundationEssentials
import HopGateCore

/// The account's ES256 key and what RFC 8555 makes of it: the JWK, its thumbprint (RFC 7638) and JWS signatures
/// in the flattened JSON serialization (RFC 8555 §6.2).
public struct ACMEAccountKey: Sendable {
    let privateKey: P256.Signing.PrivateKey

    public init() { privateKey = P256.Signing.PrivateKey() }

    public init(pem: String) throws { privateKey = try P256.Signing.PrivateKey(pemRepresentation: pem) }

    public var pem: String { privateKey.pemRepresentation }

    /// The public key as a JWK, members in the lexicographic order RFC 7638 needs for the thumbprint.
    var jwk: String {
        // x963 is 0x04 || X (32 bytes) || Y (32 bytes).
        let point = privateKey.publicKey.x963Representation
        let x = Base64URL.encode(point.dropFirst().prefix(32))
        let y = Base64URL.encode(point.suffix(32))
        return #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
    }

    /// base64url(SHA-256(JWK)): the second half of every key authorization.
    public var thumbprint: String { Base64URL.encode(SHA256.hash(data: Data(jwk.utf8))) }

    /// `token.thumbprint`, what a challenge proves control with (RFC 8555 §8.1).
    public func keyAuthorization(token: String) -> String { token + "." + thumbprint }

    /// How the signer names itself: the whole key (newAccount) or the account URL (everything after).
    enum Signer {
        case jwk
        case account(String)
    }

    /// A JWS over `payload` (nil makes a POST-as-GET: an empty payload).
    func sign(payload: Data?, url: String, nonce: String, signer: Signer) throws -> Data {
        let identity =
            switch signer {
            case .jwk: #""jwk":\#(jwk)"#
            case .account(let accountURL): #""kid":\#(JSONString.quoted(accountURL))"#
            }
        let header =
            #"{"alg":"ES256",\#(identity),"nonce":\#(JSONString.quoted(nonce)),"url":\#(JSONString.quoted(url))}"#
        let protected = Base64URL.encode(Data(header.utf8))
        let encodedPayload = payload.map { Base64URL.encode($0) } ?? ""
        // ES256 wants the 64-byte r || s form, which is what rawRepresentation is.
        let signature = try privateKey.signature(for: Data("\(protected).\(encodedPayload)".utf8))
        let body =
            #"{"protected":"\#(protected)","payload":"\#(encodedPayload)","signature":"\#(Base64URL.encode(signature.rawRepresentation))"}"#
        return Data(body.utf8)
    }
}

/// Base64 with the URL alphabet and no padding (RFC 7515 §2).
public enum Base64URL {
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Data(bytes).base64EncodedString()
            .replacing("+", with: "-")
            .replacing("/", with: "_")
            .replacing("=", with: "")
    }

    public static func decode(_ text: String) -> Data? {
        var base64 = text.replacing("-", with: "+").replacing("_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

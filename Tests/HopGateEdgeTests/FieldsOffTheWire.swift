import HopGateCore
import HopGateTunnel

extension HeaderFields {
    /// `fields` as the edge's tunnel session hands a response's fields on: read off the wire and kept as the bytes
    /// they came in.
    static func readOffTheWire(_ fields: [HeaderField]) throws -> HeaderFields {
        let frame = try TunnelFrame.responseHead(status: 200, headers: HeaderFields(fields)).encoded()
        var strings = RecentStrings()
        guard
            case .responseHead(_, let kept) = try TunnelFrame(
                decoding: frame,
                strings: &strings,
                keepingFieldBytes: true
            )
        else { preconditionFailure("a response head decodes as one") }
        return kept
    }
}

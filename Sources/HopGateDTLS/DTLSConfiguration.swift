import NIOCore

/// Where the server's certificate comes from. A seam: PEM files or a self-signed certificate now, the ACME
/// certificate manager later. The server asks again every `certificateRefreshInterval` and uses a changed
/// certificate for new sessions without a restart.
public protocol DTLSCertificateSource: Sendable {
    func currentCertificate() throws -> DTLSCertificate
}

/// A certificate that never changes.
public struct FixedCertificateSource: DTLSCertificateSource {
    public let certificate: DTLSCertificate
    public init(_ certificate: DTLSCertificate) { self.certificate = certificate }
    public func currentCertificate() -> DTLSCertificate { certificate }
}

/// The DTLS server's settings, with documented defaults.
public struct DTLSServerConfiguration: Sendable {
    public var certificateSource: any DTLSCertificateSource
    /// The largest UDP payload either side sends. 1200 bytes passes every path IPv6 allows (RFC 8200 needs 1280
    /// with headers), so no datagram is ever fragmented or dropped for size.
    public var maximumDatagramSize = DatagramSize.safe
    /// The largest UDP payload toward a client on a loopback address, once its handshake is done (see
    /// `DatagramSize`); nil keeps `maximumDatagramSize` for every client.
    public var loopbackDatagramSize: Int? = DatagramSize.largestRecordDatagram
    /// Handshakes in progress at once; a ClientHello beyond it is dropped (and counted) until one finishes.
    public var maximumHandshakes = 1_000
    /// Established sessions at once; a handshake beyond it is refused (and counted).
    public var maximumSessions = 10_000
    /// How long a handshake may take from its valid-cookie ClientHello.
    public var handshakeTimeout = TimeAmount.seconds(10)
    /// A session that receives nothing for this long is closed. The tunnel pings well within it.
    public var idleTimeout = TimeAmount.seconds(60)
    /// How often the cookie secret changes (a cookie stays valid for up to twice this) and the certificate source is
    /// asked again.
    public var cookieSecretLifetime = TimeAmount.seconds(30)
    /// Whether runs of datagrams a client sent in one segmented write (GSO) are read as one (UDP GRO, Linux).
    public var receiveOffload = true

    public init(certificateSource: any DTLSCertificateSource) {
        self.certificateSource = certificateSource
    }
}

/// The DTLS client's settings.
public struct DTLSClientConfiguration: Sendable {
    /// The name the server's certificate must carry (and the SNI sent), or its IP address.
    public var serverName: String
    public var verification: DTLSServerVerification
    public var maximumDatagramSize = DatagramSize.safe
    /// The largest UDP payload toward a server on a loopback address (see `DatagramSize`); nil keeps
    /// `maximumDatagramSize`.
    public var loopbackDatagramSize: Int? = DatagramSize.largestRecordDatagram
    public var handshakeTimeout = TimeAmount.seconds(10)
    public var idleTimeout = TimeAmount.seconds(60)
    /// Whether runs of equal-size datagrams may leave in one system call with UDP segmentation offload (GSO,
    /// Linux), once a probe showed the path to the server takes it (see `SegmentationOffloadProbe`).
    public var segmentationOffload = true

    public init(serverName: String, verification: DTLSServerVerification) {
        self.serverName = serverName
        self.verification = verification
    }
}

/// How often the handlers look at their timers: DTLS retransmission starts at one second, so a tenth of that is
/// precise enough, and one timer per socket is cheaper than one per session.
let timerTick = TimeAmount.milliseconds(100)

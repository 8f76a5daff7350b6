import HopGateDTLS
import NIOCore
import NIOSSL
import NIOTLS

/// First on every HTTPS connection when ACME runs: reads the ClientHello and, for a TLS-ALPN-01 validation, answers
/// with the challenge certificate and nothing else; every other connection gets the usual TLS and HTTP pipeline.
/// Either way it then hands the bytes it read to that pipeline and leaves.
final class ACMEValidationSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let source: any ACMEChallengeSource
    private let configureUsualPipeline: @Sendable (any Channel) -> EventLoopFuture<Void>
    private var received = ByteBuffer()
    private var decided = false
    private var deadline: Scheduled<Void>?
    /// A connection that sends no ClientHello within this is closed (nothing else watches it yet).
    static let helloTimeout = TimeAmount.seconds(10)

    init(
        source: any ACMEChallengeSource,
        configureUsualPipeline: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) {
        self.source = source
        self.configureUsualPipeline = configureUsualPipeline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: Self.helloTimeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        guard !decided else { return }
        switch ClientHello.parse(received) {
        case .needMoreData where received.readableBytes <= ClientHello.maximumBytes + 1024:
            return
        case .complete(let hello) where hello.isACMEValidation:
            decided = true
            answerValidation(context: context, serverName: hello.serverName)
        default:
            decided = true
            handOver(context: context, configured: configureUsualPipeline(context.channel))
        }
    }

    private func answerValidation(context: ChannelHandlerContext, serverName: String?) {
        let source = self.source
        let channel = context.channel
        let configured = context.eventLoop.makeFutureWithTask { () -> DTLSCertificate? in
            guard let serverName else { return nil }
            return await source.tlsALPNCertificate(serverName: serverName)
        }.flatMapThrowing { certificate in
            guard let certificate else { throw NoCertificateError(serverName: serverName) }
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificate.chainPEM.utf8))
                    .map { .certificate($0) },
                privateKey: .privateKey(
                    try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem)
                )
            )
            configuration.applicationProtocols = ["acme-tls/1"]
            let handler = NIOSSLServerHandler(context: try NIOSSLContext(configuration: configuration))
            try channel.pipeline.syncOperations.addHandlers(handler, CloseAfterHandshake())
        }
        handOver(context: context, configured: configured)
    }

    /// Once the pipeline behind is ready, passes it what arrived so far and leaves; closes if it cannot be made.
    private func handOver(context: ChannelHandlerContext, configured: EventLoopFuture<Void>) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        configured.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success:
                context.fireChannelRead(handler.wrapInboundOut(handler.received))
                handler.received = ByteBuffer()
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            case .failure:
                context.close(promise: nil)
            }
        }
    }
}

/// A TLS-ALPN-01 connection carries no data: the CA checks the certificate and hangs up; so do we.
private final class CloseAfterHandshake: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

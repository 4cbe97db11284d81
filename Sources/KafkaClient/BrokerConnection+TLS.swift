import Foundation
import NIOCore
import NIOSSL
import NIOTLS

extension KafkaSecurity.TLS {
    /// The client context: TLS 1.2 or 1.3, the broker's certificate verified against `ssl.ca.location`
    /// (or the system's CAs) and, unless turned off, against the host connected to. Every failure
    /// names the key to fix.
    func makeContext() throws(KafkaClientError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = verifiesHostname ? .fullVerification : .noHostnameVerification
        if let caLocation {
            guard let certificates = try? NIOSSLCertificate.fromPEMFile(caLocation), !certificates.isEmpty else {
                throw KafkaClientError(.configuration, "ssl.ca.location \(caLocation) holds no readable PEM certificate")
            }
            configuration.trustRoots = .certificates(certificates)
        }
        if let certificateLocation, let keyLocation {
            guard let chain = try? NIOSSLCertificate.fromPEMFile(certificateLocation), !chain.isEmpty else {
                throw KafkaClientError(.configuration, "ssl.certificate.location \(certificateLocation) holds no readable PEM certificate")
            }
            let key: NIOSSLPrivateKey
            do {
                if let keyPassword {
                    key = try NIOSSLPrivateKey(file: keyLocation, format: .pem) { setter in setter(Array(keyPassword.utf8)) }
                } else {
                    key = try NIOSSLPrivateKey(file: keyLocation, format: .pem)
                }
            } catch {
                throw KafkaClientError(.configuration, "ssl.key.location \(keyLocation) holds no readable PEM private key"
                                       + (keyPassword == nil ? " (an encrypted key needs ssl.key.password)" : " (or ssl.key.password is wrong)"))
            }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw KafkaClientError(.configuration, "the TLS settings do not make a context (\(error)): does ssl.key.location match ssl.certificate.location?")
        }
    }
}

/// Completes when the TLS handshake does: connecting returns a connection that is secured, and a
/// refused certificate is reported as such, not as the first request's dropped connection.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    /// A handshake that failed, with what the TLS layer said.
    struct Failed: Error { let cause: any Error }

    private let promise: EventLoopPromise<Void>
    private var done = false

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event, !done {
            done = true
            promise.succeed()
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            promise.fail(Failed(cause: error))
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }
}

extension BrokerConnection {
    /// What a failed handshake means to the user: a certificate or protocol refusal is not retriable
    /// (Kafka's SslAuthenticationException); a connection that just dropped is.
    static func handshakeError(_ error: any Error, host: String, port: Int) -> KafkaClientError {
        let prefix = "TLS handshake with broker \(host):\(port) failed"
        guard let failed = error as? TLSHandshakeWaiter.Failed else {
            return KafkaClientError(.connection, "\(prefix): the connection closed (is this a TLS listener?)")
        }
        if case NIOSSLError.handshakeFailed(let cause) = failed.cause {
            return KafkaClientError(.authentication, "\(prefix): \(reasons(cause))")
        }
        if let extra = failed.cause as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return KafkaClientError(.authentication, "\(prefix): its certificate does not name \(host) "
                                    + "(ssl.endpoint.identification.algorithm=none turns this check off)")
        }
        return KafkaClientError(.connection, "\(prefix): \(cause(of: failed.cause))")
    }

    /// BoringSSL's reason names (CERTIFICATE_VERIFY_FAILED), without its error numbers and source paths.
    static func reasons(_ error: BoringSSLError) -> String {
        guard case .sslError(let errors) = error, !errors.isEmpty else { return "\(error)" }
        let names = errors.map { entry -> String in
            let text = "\(entry)"
            let head = text.components(separatedBy: " at ").first ?? text
            return head.split(separator: ":").last.map { String($0) } ?? head
        }
        return names.joined(separator: ", ")
    }
}

/// Who sent a request and through which listener: what the request layer needs beyond the bytes
/// (the advertised address to answer with, the principal for quotas and, later, authorization).
public struct RequestContext: Sendable {
    /// Kafka's form of the client's address: "/127.0.0.1".
    public var clientHost: String
    /// The listener the connection came in on (its advertised address is the one clients are given).
    public var listenerName: String
    /// `User:ANONYMOUS` unless the connection authenticated.
    public var principal: KafkaPrincipal

    /// The client's address as ACLs name hosts: "127.0.0.1".
    public var host: String { clientHost.hasPrefix("/") ? String(clientHost.dropFirst()) : clientHost }

    public init(clientHost: String = "/127.0.0.1", listenerName: String = "PLAINTEXT", principal: KafkaPrincipal = .anonymous) {
        self.clientHost = clientHost
        self.listenerName = listenerName
        self.principal = principal
    }
}

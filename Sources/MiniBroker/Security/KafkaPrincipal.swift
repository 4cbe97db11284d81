/// Who a connection acts as, in Kafka's form `User:alice`. A connection that did not authenticate is
/// `User:ANONYMOUS`, as in Kafka.
public struct KafkaPrincipal: Sendable, Hashable, CustomStringConvertible {
    public var type: String
    public var name: String

    public init(type: String = "User", name: String) {
        self.type = type
        self.name = name
    }

    public static let anonymous = KafkaPrincipal(name: "ANONYMOUS")

    public var description: String { "\(type):\(name)" }
}

/// An exchange that cannot succeed: bad credentials or a message that breaks the mechanism's rules.
/// The message is what the other side is told (it never says which of user or password was wrong).
public struct SaslAuthenticationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

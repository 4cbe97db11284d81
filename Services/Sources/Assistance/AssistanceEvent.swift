import AssistanceOpenAPI
import Foundation

/// What the assistance service publishes, keyed by `id`: the contract between `assistance serve`
/// and each department's listener.
package struct AssistanceRequestEvent: Codable, Sendable, Equatable {
    package var id: String
    package var topic: String
    package var description: String
    /// ISO 8601 with milliseconds, UTC (as the 201 answer gives it).
    package var requestedAt: String

    package init(id: String, topic: String, description: String, requestedAt: String) {
        self.id = id
        self.topic = topic
        self.description = description
        self.requestedAt = requestedAt
    }
}

/// The checks OpenAPI/assistance.yaml states for a request, with Kafka's topic name rules (and no
/// internal topic: those belong to the broker).
package enum AssistanceRequestRules {
    package static let maxTopicLength = 249
    package static let maxDescriptionLength = 2000

    /// Why the request is refused, nil when it is fine.
    package static func problem(topic: String, description: String) -> String? {
        if topic.isEmpty { return "topic must not be empty" }
        if topic.unicodeScalars.count > maxTopicLength { return "topic has at most \(maxTopicLength) characters" }
        if topic == "." || topic == ".." { return "topic cannot be '.' or '..'" }
        if let bad = topic.unicodeScalars.first(where: { !isTopicCharacter($0) }) {
            return "topic may contain only ASCII letters, digits, '.', '_' and '-' (not '\(bad.escaped(asASCII: true))')"
        }
        if topic.hasPrefix("__") { return "topic '\(topic)' is internal to the broker" }
        if description.unicodeScalars.count > maxDescriptionLength {
            return "description has at most \(maxDescriptionLength) characters"
        }
        if description.allSatisfy(\.isWhitespace) { return "description must not be empty" }
        return nil
    }

    static func isTopicCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": true
        default: false
        }
    }
}

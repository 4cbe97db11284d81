/// A JAAS login module line as Kafka's `*.sasl.jaas.config` keys hold it:
/// `org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";`.
/// Only PLAIN's module is served; its `user_<name>` options are the listener's PLAIN users.
struct JaasConfig {
    static let plainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"

    var options: [String: String] = [:]

    var users: [String: String] {
        Dictionary(options.compactMap { key, value in key.hasPrefix("user_") && key.count > 5 ? (String(key.dropFirst(5)), value) : nil },
                   uniquingKeysWith: { $1 })
    }

    static func parse(_ text: String) -> (users: [String: String], error: String?) {
        do {
            return (try JaasConfig(parsing: text).users, nil)
        } catch {
            return ([:], error.reason)
        }
    }

    struct ParseError: Error { let reason: String }

    /// `Module flag key=value... ;` with values quoted ("..." with \" and \\ escapes) or bare.
    init(parsing text: String) throws(ParseError) {
        var rest = Substring(text)
        func skipSpaces() { rest = rest.drop { $0.isWhitespace } }
        func word() -> Substring {
            skipSpaces()
            let word = rest.prefix { !$0.isWhitespace && $0 != "=" && $0 != ";" }
            rest = rest.dropFirst(word.count)
            return word
        }
        guard word() == Substring(Self.plainLoginModule) else {
            throw ParseError(reason: "must start with \(Self.plainLoginModule) (MiniBroker's only JAAS module)")
        }
        guard ["required", "requisite", "sufficient", "optional"].contains(word()) else {
            throw ParseError(reason: "the login module must be followed by a control flag such as required")
        }
        while true {
            skipSpaces()
            if rest.first == ";" {
                rest = rest.dropFirst()
                skipSpaces()
                guard rest.isEmpty else { throw ParseError(reason: "text after ';'") }
                return
            }
            let key = word()
            guard !key.isEmpty, rest.first == "=" else { throw ParseError(reason: "expected key=value options ending with ';'") }
            rest = rest.dropFirst()
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\"" { closed = true; break }
                    if character == "\\", let escaped = rest.first {
                        value.append(escaped)
                        rest = rest.dropFirst()
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { throw ParseError(reason: "unterminated quoted value of \(key)") }
            } else {
                value = String(word())
            }
            options[String(key)] = value
        }
    }
}

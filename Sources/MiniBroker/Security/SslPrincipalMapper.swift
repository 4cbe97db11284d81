/// `ssl.principal.mapping.rules` (KIP-371): how a client certificate's subject becomes a principal's
/// name. Rules are tried in order; `RULE:pattern/replacement/` applies when the pattern matches the
/// whole RFC 2253 subject, its replacement may name groups (`$1`), and a trailing `L` or `U` lowers or
/// raises the result's case. `DEFAULT` keeps the subject as it is. A subject no rule applies to has no
/// principal: the connection is refused, as Kafka does. Patterns are matched by Unicode scalar, as
/// Java matches by code point.
struct SslPrincipalMapper: Sendable {
    enum Rule: Sendable {
        case `default`
        case rule(pattern: String, replacement: String, caseChange: Character?)
    }

    let rules: [Rule]

    static let defaultRules = SslPrincipalMapper(rules: [.default])

    init(rules: [Rule]) { self.rules = rules }

    /// Parses the rules; patterns are compiled once here so that a bad one is refused at start.
    init(_ text: String) throws(ConfigError) {
        var rules: [Rule] = []
        var rest = Substring(text)
        func skipSeparators() { rest = rest.drop(while: { $0 == "," || $0.isWhitespace }) }
        func refuse(_ reason: String) -> ConfigError { ConfigError(key: "ssl.principal.mapping.rules", reason: reason) }
        /// Up to the next `/` that no backslash escapes; the escapes stay (the regex or the replacement reads them).
        func field() throws(ConfigError) -> String {
            var value = ""
            var escaped = false
            while let character = rest.first {
                rest = rest.dropFirst()
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "/" { return value }
                value.append(character)
            }
            throw refuse("a RULE needs pattern/replacement/ with both slashes")
        }
        skipSeparators()
        while !rest.isEmpty {
            if rest.hasPrefix("DEFAULT") {
                rest = rest.dropFirst("DEFAULT".count)
                rules.append(.default)
            } else if rest.hasPrefix("RULE:") {
                rest = rest.dropFirst("RULE:".count)
                let pattern = try field()
                let replacement = try field()
                var caseChange: Character?
                if let first = rest.first, first == "L" || first == "U" {
                    caseChange = first
                    rest = rest.dropFirst()
                }
                do {
                    _ = try Regex(pattern)
                } catch {
                    throw refuse("the pattern '\(pattern)' is not a regular expression")
                }
                rules.append(.rule(pattern: pattern, replacement: replacement, caseChange: caseChange))
            } else {
                throw refuse("'\(rest.prefix(40))' is neither DEFAULT nor RULE:pattern/replacement/[LU]")
            }
            let before = rest
            rest = rest.drop(while: { $0.isWhitespace })
            guard rest.isEmpty || rest.first == "," else { throw refuse("rules are separated by commas, not '\(before.prefix(20))'") }
            skipSeparators()
        }
        guard !rules.isEmpty else { throw refuse("names no rule (DEFAULT keeps the certificate's subject)") }
        self.init(rules: rules)
    }

    static func problem(with text: String) -> String? {
        do {
            _ = try SslPrincipalMapper(text)
            return nil
        } catch {
            return error.reason
        }
    }

    /// The principal name for a subject, nil if no rule applies. Once per TLS connection: compiling a
    /// pattern costs far less than the handshake before it (a compiled `Regex` is not `Sendable`, so
    /// the rules are kept as text).
    func name(for subject: String) -> String? {
        for rule in rules {
            switch rule {
            case .default:
                return subject
            case .rule(let pattern, let replacement, let caseChange):
                guard let regex = try? Regex(pattern).matchingSemantics(.unicodeScalar),
                      let match = try? regex.wholeMatch(in: subject) else { continue }
                // A replacement naming a group the pattern does not have cannot apply (Java throws there).
                guard var result = Self.substitute(replacement, groups: match.output.map { $0.substring.map(String.init) ?? "" }) else {
                    return nil
                }
                if caseChange == "L" { result = result.lowercased() } else if caseChange == "U" { result = result.uppercased() }
                return result
            }
        }
        return nil
    }

    /// Java's replacement syntax: `$n` is group n (further digits join while the number stays a group),
    /// a backslash takes the next character as it is. Nil for a group that does not exist.
    static func substitute(_ replacement: String, groups: [String]) -> String? {
        var result = ""
        var characters = Substring(replacement)
        while let character = characters.first {
            characters = characters.dropFirst()
            if character == "\\", let next = characters.first {
                result.append(next)
                characters = characters.dropFirst()
            } else if character == "$" {
                guard let first = characters.first?.wholeNumberValue, first < groups.count else { return nil }
                var number = first
                characters = characters.dropFirst()
                while let digit = characters.first?.wholeNumberValue, number * 10 + digit < groups.count {
                    number = number * 10 + digit
                    characters = characters.dropFirst()
                }
                result += groups[number]
            } else {
                result.append(character)
            }
        }
        return result
    }
}

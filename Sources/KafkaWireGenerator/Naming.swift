import Foundation

/// Spec names (UpperCamelCase) to Swift identifiers.
enum Naming {
    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
        "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
        "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
        "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return",
        "throw", "switch", "where", "while", "as", "false", "is", "nil", "self", "super", "throws", "true",
        "try", "Type", "Self", "Any",
    ]

    /// "TopicId" -> "topicId", "KRaftVersion" -> "kRaftVersion", "ISR" -> "isr".
    static func lowerCamel(_ name: String) -> String {
        let chars = Array(name)
        var upperRun = 0
        while upperRun < chars.count, chars[upperRun].isUppercase { upperRun += 1 }
        if upperRun == 0 { return name }
        if upperRun == chars.count { return name.lowercased() }
        // Keep the last capital of a run when it starts the next word ("SASLAuth" -> "saslAuth").
        let lowerCount = upperRun > 1 && chars[upperRun].isLowercase ? upperRun - 1 : upperRun
        return String(chars[..<lowerCount]).lowercased() + String(chars[lowerCount...])
    }

    static func property(_ name: String) -> String {
        let p = lowerCamel(name)
        return keywords.contains(p) ? "`\(p)`" : p
    }

    /// The property name without backticks, for use after a dot or in labels.
    static func bare(_ name: String) -> String { lowerCamel(name) }

    static func stringLiteral(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// A one-line doc comment from a spec's "about".
    static func doc(_ about: String?, indent: String) -> String {
        guard let about, !about.isEmpty else { return "" }
        let line = about.replacingOccurrences(of: "\n", with: " ")
        return "\(indent)/// \(line)\n"
    }
}


import Foundation

/// A client properties file as Kafka's tools take it (`--command-config`): `key=value` lines, `#` and
/// `!` comments, CRLF line ends too. What `KafkaSecurity(properties:)` and `bootstrap.servers` read.
public enum ClientProperties {
    public static func parse(_ text: String) -> [String: String] {
        var properties: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {  // "\r\n" is one newline
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.hasPrefix("#") || trimmed.hasPrefix("!") { continue }
            let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            if parts.count == 2 { properties[parts[0]] = parts[1] }
        }
        return properties
    }

    public static func load(path: String) throws(KafkaClientError) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw KafkaClientError(.configuration, "cannot read --command-config \(path)")
        }
        return parse(text)
    }
}

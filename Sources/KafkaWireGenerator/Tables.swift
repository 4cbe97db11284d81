import Foundation

/// The ApiKey enum: each API's versions, header versions and message types.
func emitApiKey(requests: [Int: MessageSpec], responses: [Int: MessageSpec]) -> String {
    let keys = requests.keys.sorted()
    func name(_ key: Int) -> String { String(requests[key]!.name.dropLast("Request".count)) }
    func caseName(_ key: Int) -> String { Naming.lowerCamel(name(key)) }
    var out = "/// Every API of the protocol, with the versions the specs define.\n"
    out += "public enum ApiKey: Int16, CaseIterable, Sendable, CustomStringConvertible {\n"
    for k in keys { out += "    case \(caseName(k)) = \(k)\n" }

    func property(_ signature: String, _ value: (Int) -> String) {
        out += "\n    public var \(signature) {\n        switch self {\n"
        for k in keys { out += "        case .\(caseName(k)): return \(value(k))\n" }
        out += "        }\n    }\n"
    }
    property("name: String") { "\"\(name($0))\"" }
    property("validVersions: ClosedRange<Int16>") {
        let r = requests[$0]!.validVersions
        return "\(r.lowerBound)...\(r.upperBound)"
    }
    property("firstFlexibleVersion: Int16?") {
        let f = requests[$0]!.flexibleVersions
        return f.isEmpty ? "nil" : "\(f.low)"
    }
    out += "\n    /// The newest version is still under development in Kafka and may change.\n"
    property("latestVersionUnstable: Bool") { "\(requests[$0]!.latestVersionUnstable)" }
    out += "\n    /// The listeners that serve the API (\"broker\", \"controller\", \"zkBroker\").\n"
    property("listeners: [String]") { "[" + requests[$0]!.listeners.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
    property("requestType: any KafkaRequest.Type") { "\(requests[$0]!.name).self" }
    property("responseType: any KafkaResponse.Type") { "\(responses[$0]!.name).self" }

    out += """

        public var description: String { name }

        public func isFlexible(_ version: Int16) -> Bool {
            guard let first = firstFlexibleVersion else { return false }
            return version >= first
        }

        /// The RequestHeader version a request of this API and version carries: 2 when flexible, else 1
        /// (0 only for ControlledShutdown v0).
        public func requestHeaderVersion(_ version: Int16) -> Int16 {
            if self == .controlledShutdown && version == 0 { return 0 }
            return isFlexible(version) ? 2 : 1
        }

        /// The ResponseHeader version: 1 when flexible, else 0. ApiVersions responses always use 0 so that a
        /// client can read the answer whatever version it asked for.
        public func responseHeaderVersion(_ version: Int16) -> Int16 {
            if self == .apiVersions { return 0 }
            return isFlexible(version) ? 1 : 0
        }
    }

    """
    return out
}

/// Error codes whose Kafka exception is retriable (extends RetriableException, directly or through
/// InvalidMetadataException). errors.tsv does not carry this, so it is kept here.
let retriableErrors: Set<String> = [
    "CORRUPT_MESSAGE", "UNKNOWN_TOPIC_OR_PARTITION", "LEADER_NOT_AVAILABLE", "NOT_LEADER_OR_FOLLOWER",
    "REQUEST_TIMED_OUT", "REPLICA_NOT_AVAILABLE", "NETWORK_EXCEPTION", "COORDINATOR_LOAD_IN_PROGRESS",
    "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR", "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "NOT_CONTROLLER", "CONCURRENT_TRANSACTIONS", "KAFKA_STORAGE_ERROR", "FETCH_SESSION_ID_NOT_FOUND",
    "INVALID_FETCH_SESSION_EPOCH", "LISTENER_NOT_FOUND", "FENCED_LEADER_EPOCH", "UNKNOWN_LEADER_EPOCH",
    "OFFSET_NOT_AVAILABLE", "PREFERRED_LEADER_NOT_AVAILABLE", "ELIGIBLE_LEADERS_NOT_AVAILABLE",
    "ELECTION_NOT_NEEDED", "UNSTABLE_OFFSET_COMMIT", "THROTTLING_QUOTA_EXCEEDED", "UNKNOWN_TOPIC_ID",
    "INCONSISTENT_TOPIC_ID", "FETCH_SESSION_TOPIC_ID_ERROR", "SHARE_SESSION_NOT_FOUND",
    "INVALID_SHARE_SESSION_EPOCH",
]

/// The ErrorCode type from errors.tsv (code, name, description).
func emitErrorCodes(_ tsv: String) -> String {
    var rows: [(code: Int, name: String, description: String)] = []
    for line in tsv.split(separator: "\n").dropFirst() {
        let cols = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard cols.count >= 2, let code = Int(cols[0]) else { continue }
        rows.append((code, String(cols[1]), cols.count > 2 ? String(cols[2]) : ""))
    }
    func caseName(_ name: String) -> String {
        // NONE would shadow Optional.none; Kafka's name stays available as `name`.
        name == "NONE" ? "noError" : Naming.lowerCamel(name.lowercased().split(separator: "_").map { $0.capitalized }.joined())
    }
    var out = """
    /// A Kafka protocol error code. Kafka's rule: names can change, codes cannot, so the code is the identity.
    public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int16

        public init(rawValue: Int16) { self.rawValue = rawValue }


    """
    for r in rows {
        out += "    /// \(r.description.isEmpty ? r.name : r.description)\n"
        out += "    public static let \(caseName(r.name)) = ErrorCode(rawValue: \(r.code))\n"
    }
    out += "\n    /// Every error code the protocol defines.\n    public static let all: [ErrorCode] = [\n"
    out += rows.map { "        .\(caseName($0.name)),\n" }.joined() + "    ]\n"
    out += "\n    /// Kafka's name, e.g. NOT_LEADER_OR_FOLLOWER.\n    public var name: String {\n        switch rawValue {\n"
    for r in rows { out += "        case \(r.code): return \"\(r.name)\"\n" }
    out += "        default: return \"UNKNOWN_ERROR_CODE_\\(rawValue)\"\n        }\n    }\n"
    out += "\n    /// Kafka's description of the error.\n    public var message: String {\n        switch rawValue {\n"
    for r in rows { out += "        case \(r.code): return \(Naming.stringLiteral(r.description))\n" }
    out += "        default: return \"Unknown error code \\(rawValue).\"\n        }\n    }\n"
    out += "\n    /// Whether a client may retry the request that got this error.\n    public var isRetriable: Bool {\n        switch rawValue {\n"
    let retriable = rows.filter { retriableErrors.contains($0.name) }.map { String($0.code) }
    out += "        case \(retriable.joined(separator: ", ")): return true\n        default: return false\n        }\n    }\n"
    out += "\n    public var description: String { \"\\(name) (\\(rawValue))\" }\n}\n"
    return out
}

import Foundation

/// A version range of the specs: "0+", "3-5", "7" or "none".
struct Versions: Equatable, CustomStringConvertible {
    var low: Int
    var high: Int?  // nil: open ended
    var isEmpty: Bool

    static let none = Versions(low: 0, high: nil, isEmpty: true)
    static let all = Versions(low: 0, high: nil, isEmpty: false)

    init(low: Int, high: Int?, isEmpty: Bool = false) {
        self.low = low
        self.high = high
        self.isEmpty = isEmpty
    }

    init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "none" || t.isEmpty {
            self = .none
        } else if t.hasSuffix("+") {
            guard let low = Int(t.dropLast()) else { throw SpecError("bad versions \(t)") }
            self.init(low: low, high: nil)
        } else if let dash = t.firstIndex(of: "-") {
            guard let low = Int(t[..<dash]), let high = Int(t[t.index(after: dash)...]) else {
                throw SpecError("bad versions \(t)")
            }
            self.init(low: low, high: high)
        } else {
            guard let v = Int(t) else { throw SpecError("bad versions \(t)") }
            self.init(low: v, high: v)
        }
    }

    func contains(_ v: Int) -> Bool { !isEmpty && v >= low && (high.map { v <= $0 } ?? true) }

    /// Intersected with a message's valid range, nil when the two do not meet.
    func clamped(to valid: ClosedRange<Int>) -> ClosedRange<Int>? {
        if isEmpty { return nil }
        let lo = max(low, valid.lowerBound)
        let hi = min(high ?? Int.max, valid.upperBound)
        return lo <= hi ? lo...hi : nil
    }

    var description: String {
        if isEmpty { return "none" }
        guard let high else { return "\(low)+" }
        return low == high ? "\(low)" : "\(low)-\(high)"
    }
}

struct SpecError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

indirect enum FieldType: Equatable {
    case bool, int8, int16, uint16, int32, uint32, int64, float64, string, bytes, records, uuid
    case array(FieldType)
    case structure(String)

    init(parsing text: String) {
        if text.hasPrefix("[]") {
            self = .array(FieldType(parsing: String(text.dropFirst(2))))
            return
        }
        switch text {
        case "bool": self = .bool
        case "int8": self = .int8
        case "int16": self = .int16
        case "uint16": self = .uint16
        case "int32": self = .int32
        case "uint32": self = .uint32
        case "int64": self = .int64
        case "float64": self = .float64
        case "string": self = .string
        case "bytes": self = .bytes
        case "records": self = .records
        case "uuid": self = .uuid
        default: self = .structure(text)
        }
    }

    var structName: String? {
        switch self {
        case .structure(let n): return n
        case .array(let e): return e.structName
        default: return nil
        }
    }

    var isArray: Bool { if case .array = self { return true } else { return false } }
}

final class FieldSpec {
    let name: String
    let type: FieldType
    let versions: Versions
    let nullableVersions: Versions
    let taggedVersions: Versions
    let tag: Int?
    let defaultValue: String?
    /// Field-level override of the message's flexible versions (only RequestHeader.ClientId uses it).
    let flexibleVersions: Versions?
    let about: String?
    let fields: [FieldSpec]?

    init(json: [String: Any]) throws {
        guard let name = json["name"] as? String, let type = json["type"] as? String else {
            throw SpecError("field without name or type: \(json)")
        }
        self.name = name
        self.type = FieldType(parsing: type)
        versions = try Versions(parsing: json["versions"] as? String ?? "none")
        nullableVersions = try Versions(parsing: json["nullableVersions"] as? String ?? "none")
        taggedVersions = try Versions(parsing: json["taggedVersions"] as? String ?? "none")
        tag = json["tag"] as? Int ?? (json["tag"] as? String).flatMap { Int($0) }
        switch json["default"] {
        case let s as String: defaultValue = s
        // JSON numbers and booleans both arrive as NSNumber; the field's type tells them apart.
        case let n as NSNumber where self.type == .bool: defaultValue = n.boolValue ? "true" : "false"
        case let n as NSNumber: defaultValue = n.stringValue
        default: defaultValue = nil
        }
        flexibleVersions = try (json["flexibleVersions"] as? String).map(Versions.init(parsing:))
        about = json["about"] as? String
        fields = try (json["fields"] as? [[String: Any]])?.map(FieldSpec.init(json:))
    }

    var isNullableSomewhere: Bool { !nullableVersions.isEmpty }
}

struct StructSpec {
    let name: String
    let fields: [FieldSpec]
}

final class MessageSpec {
    let name: String
    let kind: String  // request, response, header, data
    let apiKey: Int?
    let validVersions: ClosedRange<Int>
    let flexibleVersions: Versions
    let latestVersionUnstable: Bool
    let listeners: [String]
    let fields: [FieldSpec]
    let commonStructs: [StructSpec]

    init(json: [String: Any], lowestVersion: Int?) throws {
        guard let name = json["name"] as? String, let kind = json["type"] as? String else {
            throw SpecError("message without name or type")
        }
        self.name = name
        self.kind = kind
        apiKey = json["apiKey"] as? Int
        let valid = try Versions(parsing: json["validVersions"] as? String ?? "0")
        guard !valid.isEmpty, let high = valid.high else { throw SpecError("\(name): bad validVersions") }
        validVersions = min(valid.low, lowestVersion ?? valid.low)...high
        flexibleVersions = try Versions(parsing: json["flexibleVersions"] as? String ?? "none")
        latestVersionUnstable = json["latestVersionUnstable"] as? Bool ?? false
        listeners = json["listeners"] as? [String] ?? []
        fields = try (json["fields"] as? [[String: Any]] ?? []).map(FieldSpec.init(json:))
        commonStructs = try (json["commonStructs"] as? [[String: Any]] ?? []).map {
            guard let n = $0["name"] as? String else { throw SpecError("\(name): common struct without name") }
            return StructSpec(name: n, fields: try ($0["fields"] as? [[String: Any]] ?? []).map(FieldSpec.init(json:)))
        }
    }

    /// Every struct of the message (inline definitions and common structs), named once each, in spec order.
    func allStructs() throws -> [StructSpec] {
        var result: [StructSpec] = []
        var seen: Set<String> = []
        func visit(_ fields: [FieldSpec]) {
            for f in fields {
                if let n = f.type.structName, let inner = f.fields, !seen.contains(n) {
                    seen.insert(n)
                    result.append(StructSpec(name: n, fields: inner))
                    visit(inner)
                }
            }
        }
        visit(fields)
        for c in commonStructs where !seen.contains(c.name) {
            seen.insert(c.name)
            result.append(c)
            visit(c.fields)
        }
        // Every referenced struct must be defined.
        func check(_ fields: [FieldSpec]) throws {
            for f in fields {
                if let n = f.type.structName, !seen.contains(n) { throw SpecError("\(name): undefined struct \(n)") }
                if let inner = f.fields { try check(inner) }
            }
        }
        try check(fields)
        return result
    }
}

/// Kafka's spec files carry `//` comments; strip them outside string literals.
func stripComments(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    var inString = false
    var escaped = false
    var iterator = Array(text.unicodeScalars)[...]
    while let c = iterator.popFirst() {
        if inString {
            out.unicodeScalars.append(c)
            if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
        } else if c == "/" && iterator.first == "/" {
            while let n = iterator.first, n != "\n" { iterator.removeFirst() }
        } else {
            if c == "\"" { inString = true }
            out.unicodeScalars.append(c)
        }
    }
    return out
}

func loadSpec(_ url: URL) throws -> [String: Any] {
    let text = try String(contentsOf: url, encoding: .utf8)
    let data = Data(stripComments(text).utf8)
    guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw SpecError("\(url.lastPathComponent): not a JSON object")
    }
    return json
}

/// Reads `message/` and overlays `message-4.3/`: a file in the newer set replaces the older one (it has
/// the newest versions and keeps the old fields), with its valid range extended down to the older low end.
func loadMessages(protocolDirectory: URL) throws -> [MessageSpec] {
    let fm = FileManager.default
    let oldDir = protocolDirectory.appendingPathComponent("message")
    let newDir = protocolDirectory.appendingPathComponent("message-4.3")
    var files: [String: (json: [String: Any], lowest: Int?)] = [:]
    for name in try fm.contentsOfDirectory(atPath: oldDir.path) where name.hasSuffix(".json") {
        files[name] = (try loadSpec(oldDir.appendingPathComponent(name)), nil)
    }
    if fm.fileExists(atPath: newDir.path) {
        for name in try fm.contentsOfDirectory(atPath: newDir.path) where name.hasSuffix(".json") {
            var lowest: Int? = nil
            if let old = files[name]?.json, let v = old["validVersions"] as? String {
                lowest = try Versions(parsing: v).low
            }
            let json = try loadSpec(newDir.appendingPathComponent(name))
            // An API renamed in the newer set (ListClientMetricsResources -> ListConfigResources) keeps
            // its key and wire format: the new name replaces the old.
            if let key = json["apiKey"] as? Int, let kind = json["type"] as? String,
               let renamed = files.first(where: { $0.key != name && $0.value.json["apiKey"] as? Int == key
                   && $0.value.json["type"] as? String == kind }) {
                files[renamed.key] = nil
            }
            files[name] = (json, lowest)
        }
    }
    return try files.keys.sorted().map { try MessageSpec(json: files[$0]!.json, lowestVersion: files[$0]!.lowest) }
}

import Foundation

/// Writes the Swift for one struct of a message: properties, memberwise init, decode and encode.
/// Every condition is on the enclosing message's version, clamped to its valid range so that no
/// always-true or never-true test is emitted.
struct StructEmitter {
    let message: MessageSpec
    let typeName: String      // e.g. "ProduceRequest" or "TopicProduceData"
    let fields: [FieldSpec]
    /// The structs of a request that hold a records field (themselves or below): they get a second
    /// encoder that leaves large record batches out of the buffer (`detachingBytesOf`).
    var detaching: Set<String> = []

    var valid: ClosedRange<Int> { message.validVersions }

    // MARK: Version conditions

    /// A Swift boolean expression over `version` for a version set, nil when it holds for every valid
    /// version, "false" when for none.
    func condition(_ v: Versions) -> String? {
        guard let r = v.clamped(to: valid) else { return "false" }
        if r == valid { return nil }
        if r.lowerBound == valid.lowerBound { return "version <= \(r.upperBound)" }
        if r.upperBound == valid.upperBound { return "version >= \(r.lowerBound)" }
        if r.lowerBound == r.upperBound { return "version == \(r.lowerBound)" }
        return "(\(r.lowerBound)...\(r.upperBound)).contains(version)"
    }

    /// Versions in which a field is a regular (untagged) field.
    func regularVersions(_ f: FieldSpec) -> Versions {
        if f.taggedVersions.isEmpty { return f.versions }
        if f.versions.isEmpty || f.taggedVersions.low <= f.versions.low { return .none }
        var r = f.versions
        let top = f.taggedVersions.low - 1
        r.high = r.high.map { min($0, top) } ?? top
        return r
    }

    func taggedVersions(_ f: FieldSpec) -> Versions {
        guard !f.taggedVersions.isEmpty, !f.versions.isEmpty else { return .none }
        var r = f.taggedVersions
        r.low = max(r.low, f.versions.low)
        if let h = f.versions.high { r.high = r.high.map { min($0, h) } ?? h }
        if let h = r.high, h < r.low { return .none }
        return r
    }

    func present(_ f: FieldSpec) -> Bool { f.versions.clamped(to: valid) != nil }

    /// Is the field nullable in every version where it is present?
    func alwaysNullable(_ f: FieldSpec) -> Bool {
        guard let present = f.versions.clamped(to: valid) else { return false }
        return present.allSatisfy { f.nullableVersions.contains($0) }
    }

    /// The compact-encoding expression for a field: the message's `flexible`, or the field's own override.
    func compact(_ f: FieldSpec) -> String {
        guard let override = f.flexibleVersions else { return "flexible" }
        return condition(override) ?? "true"
    }

    // MARK: Types and defaults

    static func baseType(_ t: FieldType) -> String {
        switch t {
        case .bool: return "Bool"
        case .int8: return "Int8"
        case .int16: return "Int16"
        case .uint16: return "UInt16"
        case .int32: return "Int32"
        case .uint32: return "UInt32"
        case .int64: return "Int64"
        case .float64: return "Double"
        case .string: return "String"
        case .bytes, .records: return "ByteBuffer"
        case .uuid: return "KafkaUUID"
        case .array(let e): return "[\(baseType(e))]"
        case .structure(let n): return n
        }
    }

    static func swiftType(_ f: FieldSpec) -> String {
        baseType(f.type) + (f.isNullableSomewhere ? "?" : "")
    }

    /// The value a non-null field of this type takes when nothing is set.
    static func emptyValue(_ t: FieldType) -> String {
        switch t {
        case .bool: return "false"
        case .float64: return "0.0"
        case .string: return "\"\""
        case .bytes, .records: return "ByteBuffer()"
        case .uuid: return "KafkaUUID.zero"
        case .array: return "[]"
        case .structure(let n): return "\(n)()"
        default: return "0"
        }
    }

    static func defaultValue(_ f: FieldSpec) -> String {
        let d = f.defaultValue?.trimmingCharacters(in: .whitespaces)
        if f.isNullableSomewhere {
            if d == "null" { return "nil" }
            if d == nil, f.type == .records { return "nil" }
        }
        switch f.type {
        case .int8, .int16, .uint16, .int32, .uint32, .int64:
            guard let d, !d.isEmpty else { return "0" }
            if d.hasPrefix("0x") || d.hasPrefix("-0x") {
                let negative = d.hasPrefix("-")
                let digits = d.dropFirst(negative ? 3 : 2)
                return (negative ? "-" : "") + String(Int64(digits, radix: 16)!)
            }
            return String(Int64(d)!)
        case .bool: return d == "true" ? "true" : "false"
        case .float64: return d.flatMap(Double.init).map { "\($0)" } ?? "0.0"
        case .string: return Naming.stringLiteral(d ?? "")
        default: return emptyValue(f.type)
        }
    }

    // MARK: Reading

    func readExpr(_ t: FieldType, buffer: String, compact: String, nullable: Bool, depth: Int = 0) -> String {
        switch t {
        case .bool: return "try \(buffer).readKafkaBool()"
        case .int8: return "try \(buffer).readKafkaInt8()"
        case .int16: return "try \(buffer).readKafkaInt16()"
        case .uint16: return "try \(buffer).readKafkaUInt16()"
        case .int32: return "try \(buffer).readKafkaInt32()"
        case .uint32: return "try \(buffer).readKafkaUInt32()"
        case .int64: return "try \(buffer).readKafkaInt64()"
        case .float64: return "try \(buffer).readKafkaFloat64()"
        case .uuid: return "try \(buffer).readKafkaUUID()"
        case .string:
            return "try \(buffer).readKafka\(nullable ? "Nullable" : "")String(compact: \(compact))"
        case .bytes, .records:
            return "try \(buffer).readKafka\(nullable ? "Nullable" : "")Bytes(compact: \(compact))"
        case .array(let e):
            let inner = "input\(depth)"
            let element = readExpr(e, buffer: inner, compact: compact, nullable: false, depth: depth + 1)
            return "try \(buffer).readKafka\(nullable ? "Nullable" : "")Array(compact: \(compact)) { \(inner) in \(element) }"
        case .structure(let n):
            let read = "\(n)(from: &\(buffer), version: version)"
            return nullable ? "try \(buffer).readKafkaStructPresence() ? \(read) : nil" : "try \(read)"
        }
    }

    // MARK: Writing

    /// `detach`: in the detaching encoder, where records fields and the structs holding them write
    /// through `detachingBytesOf:into:`.
    func writeStmt(_ t: FieldType, value: String, buffer: String, compact: String, nullable: Bool, depth: Int = 0,
                   detach: Bool = false) -> String {
        switch t {
        case .bool: return "\(buffer).writeKafkaBool(\(value))"
        case .int8: return "\(buffer).writeKafkaInt8(\(value))"
        case .int16: return "\(buffer).writeKafkaInt16(\(value))"
        case .uint16: return "\(buffer).writeKafkaUInt16(\(value))"
        case .int32: return "\(buffer).writeKafkaInt32(\(value))"
        case .uint32: return "\(buffer).writeKafkaUInt32(\(value))"
        case .int64: return "\(buffer).writeKafkaInt64(\(value))"
        case .float64: return "\(buffer).writeKafkaFloat64(\(value))"
        case .uuid: return "\(buffer).writeKafkaUUID(\(value))"
        case .string:
            return "\(buffer).writeKafka\(nullable ? "Nullable" : "")String(\(value), compact: \(compact))"
        case .records where detach:
            return "\(buffer).writeKafka\(nullable ? "Nullable" : "")Bytes(\(value), compact: \(compact), detachingBytesOf: minimumSize, into: &detached)"
        case .bytes, .records:
            return "\(buffer).writeKafka\(nullable ? "Nullable" : "")Bytes(\(value), compact: \(compact))"
        case .array(let e):
            let out = "output\(depth)", item = "item\(depth)"
            let element = writeStmt(e, value: item, buffer: out, compact: compact, nullable: false, depth: depth + 1, detach: detach)
            return "\(buffer).writeKafka\(nullable ? "Nullable" : "")Array(\(value), compact: \(compact)) { \(out), \(item) in \(element) }"
        case .structure(let n):
            let arguments = detach && detaching.contains(n) ? "version: version, detachingBytesOf: minimumSize, into: &detached" : "version: version"
            if nullable {
                return "if let present = \(value) { \(buffer).writeKafkaStructPresence(true); present.write(into: &\(buffer), \(arguments)) } else { \(buffer).writeKafkaStructPresence(false) }"
            }
            return "\(value).write(into: &\(buffer), \(arguments))"
        }
    }

    /// A first guess of the bytes the detaching encoder writes into its buffer: its strings and the
    /// record batches it keeps, plus a little per field (a frame that grows by doubling copies itself).
    func sizeHintBody(_ live: [FieldSpec], indent: String) -> String {
        var fixed = typeName == message.name ? 256 : 16  // the request header; a struct's tagged fields
        var lines = ""
        for f in live where condition(regularVersions(f)) != "false" {
            let p = "self.\(Naming.bare(f.name))"
            let optional = f.isNullableSomewhere
            switch f.type {
            case .string:
                fixed += 2
                lines += "\(indent)size += \(optional ? "\(p)?.utf8.count ?? 0" : "\(p).utf8.count")\n"
            case .records:
                fixed += 4
                lines += "\(indent)if let count = \(p)\(optional ? "?" : "").readableBytes, count < minimumSize { size += count }\n"
            case .structure(let n) where detaching.contains(n):
                lines += "\(indent)size += \(p)\(optional ? "?" : "").encodedSizeHint(detachingBytesOf: minimumSize)\(optional ? " ?? 0" : "")\n"
            case .array(.structure(let n)) where detaching.contains(n):
                fixed += 4
                lines += "\(indent)size += \(optional ? "(\(p) ?? [])" : p).reduce(0) { $0 + $1.encodedSizeHint(detachingBytesOf: minimumSize) }\n"
            default:
                fixed += 8
            }
        }
        return "\(indent)var size = \(fixed)\n" + lines + "\(indent)return size\n"
    }

    /// The value to write at a version where the field is not nullable: an optional property falls back
    /// to its type's empty value, since a null cannot be written there.
    func nonNullValue(_ f: FieldSpec) -> String {
        let p = "self.\(Naming.bare(f.name))"
        return f.isNullableSomewhere ? "(\(p) ?? \(Self.emptyValue(f.type)))" : p
    }

    /// Statements that read or write a field at the versions where it may or may not be nullable.
    func nullableSplit(_ f: FieldSpec, _ body: (Bool) -> String, indent: String) -> String {
        if !f.isNullableSomewhere { return indent + body(false) + "\n" }
        if alwaysNullable(f) { return indent + body(true) + "\n" }
        let cond = condition(f.nullableVersions) ?? "true"
        return "\(indent)if \(cond) {\n\(indent)    \(body(true))\n\(indent)} else {\n\(indent)    \(body(false))\n\(indent)}\n"
    }

    // MARK: The struct

    func emit(conformance: String, statics: String, indent: String) -> String {
        let i1 = indent + "    ", i2 = i1 + "    ", i3 = i2 + "    "
        let live = fields.filter(present)
        var out = "\(indent)public struct \(typeName): \(conformance) {\n"
        out += statics
        for f in live {
            out += Naming.doc(f.about, indent: i1)
            out += "\(i1)public var \(Naming.property(f.name)): \(Self.swiftType(f))\n"
        }
        out += "\(i1)/// Tagged fields this codec does not know, kept to be written back.\n"
        out += "\(i1)public var unknownTaggedFields: [TaggedField]\n\n"

        // Memberwise init with the spec's defaults.
        let params = live.map { "\(Naming.property($0.name)): \(Self.swiftType($0)) = \(Self.defaultValue($0))" }
            + ["unknownTaggedFields: [TaggedField] = []"]
        out += "\(i1)public init(\n" + params.map { "\(i2)\($0)" }.joined(separator: ",\n") + "\n\(i1)) {\n"
        for f in live { out += "\(i2)self.\(Naming.bare(f.name)) = \(Naming.property(f.name))\n" }
        out += "\(i2)self.unknownTaggedFields = unknownTaggedFields\n\(i1)}\n\n"

        let flexibleDecl: String = {
            guard !message.flexibleVersions.isEmpty else { return "let flexible = false" }
            return "let flexible = \(condition(message.flexibleVersions) ?? "true")"
        }()
        let tagged = live.filter { taggedVersions($0).clamped(to: valid) != nil }.sorted { $0.tag! < $1.tag! }

        // Decode.
        var body = ""
        for f in live {
            let regular = regularVersions(f)
            let cond = condition(regular) ?? "true"
            if cond == "false" { continue }
            let inner = cond == "true" ? i2 : i3
            let reads = nullableSplit(f, { nullable in
                "self.\(Naming.bare(f.name)) = \(readExpr(f.type, buffer: "buffer", compact: compact(f), nullable: nullable))"
            }, indent: inner)
            body += cond == "true" ? reads : "\(i2)if \(cond) {\n\(reads)\(i2)}\n"
        }
        if !message.flexibleVersions.isEmpty {
            body += "\(i2)if flexible {\n"
            body += "\(i3)for _ in 0..<(try buffer.readTaggedFieldCount()) {\n"
            let i4 = i3 + "    ", i5 = i4 + "    "
            if tagged.isEmpty {
                body += "\(i4)self.unknownTaggedFields.append(try buffer.readTaggedField())\n"
            } else {
                body += "\(i4)var field = try buffer.readTaggedField()\n\(i4)switch field.tag {\n"
                for f in tagged {
                    let cond = condition(taggedVersions(f)).map { " where \($0)" } ?? ""
                    body += "\(i4)case \(f.tag!)\(cond):\n"
                    body += nullableSplit(f, { nullable in
                        "self.\(Naming.bare(f.name)) = \(readExpr(f.type, buffer: "field.data", compact: "true", nullable: nullable))"
                    }, indent: i5)
                }
                body += "\(i4)default:\n\(i5)self.unknownTaggedFields.append(field)\n\(i4)}\n"
            }
            body += "\(i3)}\n\(i2)}\n"
        }
        out += "\(i1)public init(from buffer: inout ByteBuffer, version: Int16) throws {\n\(i2)self.init()\n"
        if body.contains("flexible") { out += "\(i2)\(flexibleDecl)\n" }
        out += body + "\(i1)}\n\n"

        out += encoder(live, tagged: tagged, flexibleDecl: flexibleDecl, indent: indent, detach: false)
        if detaching.contains(typeName) {
            out += "\n\(i1)/// As `write(into:version:)`, but record batches of `minimumSize` bytes or more are left out of\n"
            out += "\(i1)/// `buffer` and listed in `detached` (with the writer index where they belong).\n"
            out += encoder(live, tagged: tagged, flexibleDecl: flexibleDecl, indent: indent, detach: true)
            out += "\n\(i1)public func encodedSizeHint(detachingBytesOf minimumSize: Int) -> Int {\n"
            out += sizeHintBody(live, indent: i2) + "\(i1)}\n"
        }
        out += "\(indent)}\n"
        return out
    }

    /// `write(into:version:)`, or with `detach` its detaching twin.
    func encoder(_ live: [FieldSpec], tagged: [FieldSpec], flexibleDecl: String, indent: String, detach: Bool) -> String {
        let i1 = indent + "    ", i2 = i1 + "    ", i3 = i2 + "    "
        var body = ""
        for f in live {
            let regular = regularVersions(f)
            let cond = condition(regular) ?? "true"
            if cond == "false" { continue }
            let inner = cond == "true" ? i2 : i3
            let writes = nullableSplit(f, { nullable in
                writeStmt(f.type, value: nullable ? "self.\(Naming.bare(f.name))" : nonNullValue(f),
                          buffer: "buffer", compact: compact(f), nullable: nullable, detach: detach)
            }, indent: inner)
            body += cond == "true" ? writes : "\(i2)if \(cond) {\n\(writes)\(i2)}\n"
        }
        if !message.flexibleVersions.isEmpty {
            body += "\(i2)if flexible {\n"
            if tagged.isEmpty {
                body += "\(i3)buffer.writeTaggedFields(self.unknownTaggedFields)\n"
            } else {
                body += "\(i3)var tagged = TaggedFieldsWriter(unknown: self.unknownTaggedFields)\n"
                for f in tagged {
                    let p = "self.\(Naming.bare(f.name))"
                    let cond = condition(taggedVersions(f)).map { "\($0) && " } ?? ""
                    body += "\(i3)if \(cond)\(p) != \(Self.defaultValue(f)) {\n"
                    body += "\(i3)    tagged.add(tag: \(f.tag!)) { field in\n"
                    body += nullableSplit(f, { nullable in
                        writeStmt(f.type, value: nullable ? p : nonNullValue(f), buffer: "field", compact: "true", nullable: nullable)
                    }, indent: i3 + "        ")
                    body += "\(i3)    }\n\(i3)}\n"
                }
                body += "\(i3)tagged.write(into: &buffer)\n"
            }
            body += "\(i2)}\n"
        }
        var out = detach
            ? "\(i1)public func write(into buffer: inout ByteBuffer, version: Int16, detachingBytesOf minimumSize: Int,\n"
                + "\(i1)                  into detached: inout [DetachedBytes]) {\n"
            : "\(i1)public func write(into buffer: inout ByteBuffer, version: Int16) {\n"
        if body.contains("flexible") { out += "\(i2)\(flexibleDecl)\n" }
        return out + body + "\(i1)}\n"
    }

    // MARK: Random values (for the round-trip property tests)

    func randomExpr(_ t: FieldType, nullable: Bool) -> String {
        let value: String
        switch t {
        case .bool: value = "rng.bool()"
        case .int8: value = "rng.integer(Int8.self)"
        case .int16: value = "rng.integer(Int16.self)"
        case .uint16: value = "rng.integer(UInt16.self)"
        case .int32: value = "rng.integer(Int32.self)"
        case .uint32: value = "rng.integer(UInt32.self)"
        case .int64: value = "rng.integer(Int64.self)"
        case .float64: value = "rng.float64()"
        case .uuid: value = "rng.uuid()"
        case .string: value = "rng.string()"
        case .bytes, .records: value = "rng.bytes()"
        case .array(let e):
            value = "rng.array { rng in \(randomExpr(e, nullable: false)) }"
        case .structure(let n): value = "\(typeQualifier)\(n).random(version: version, using: &rng)"
        }
        return nullable ? "rng.null() ? nil : \(value)" : value
    }

    /// Nested structs are referenced from an extension of the message, so qualify them.
    var typeQualifier: String { message.name + "." }

    func emitRandom(qualifiedName: String) -> String {
        var out = "extension \(qualifiedName) {\n"
        out += "    public static func random(version: Int16, using rng: inout RandomSource) -> Self {\n"
        out += "        var value = Self()\n"
        let live = fields.filter(present)
        for f in live {
            let allVersions = f.versions
            let cond = condition(allVersions) ?? "true"
            if cond == "false" { continue }
            let indent = cond == "true" ? "        " : "            "
            let assign = nullableSplit(f, { nullable in
                "value.\(Naming.bare(f.name)) = \(randomExpr(f.type, nullable: nullable))"
            }, indent: indent)
            out += cond == "true" ? assign : "        if \(cond) {\n\(assign)        }\n"
        }
        if !message.flexibleVersions.isEmpty {
            let maxTag = fields.compactMap(\.tag).max() ?? -1
            let cond = condition(message.flexibleVersions) ?? "true"
            out += "        if \(cond) { value.unknownTaggedFields = rng.unknownTaggedFields(above: \(maxTag)) }\n"
        }
        out += "        return value\n    }\n}\n"
        return out
    }
}

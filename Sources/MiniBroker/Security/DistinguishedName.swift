/// A certificate's subject in RFC 2253's string form, as Java's `X500Principal.getName()` writes it
/// and Kafka's SSL principals carry it: `CN=alice,OU=Eng,O=Example,C=US` (the last RDN first).
/// Attribute types RFC 2253 names get their keyword; any other is its dotted OID with the value's
/// DER in hex (`1.2.840.113549.1.9.1=#1611...`). The certificate's bytes come from the peer: every
/// length is checked against what is there.
enum DistinguishedName {
    struct Malformed: Error {}

    /// RFC 2253's keywords.
    static let keywords: [String: String] = [
        "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
        "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
    ]

    /// The subject of a DER certificate.
    static func subject(ofCertificate der: [UInt8]) throws(Malformed) -> String {
        var certificate = DERReader(der[...])
        var tbs = try certificate.read(tag: 0x30).contents
        var fields = try tbs.read(tag: 0x30).contents
        if fields.peekTag == 0xA0 { _ = try fields.read() }  // version
        _ = try fields.read(tag: 0x02)  // serialNumber
        _ = try fields.read(tag: 0x30)  // signature
        _ = try fields.read(tag: 0x30)  // issuer
        _ = try fields.read(tag: 0x30)  // validity
        return try rfc2253(name: fields.read(tag: 0x30).contents)
    }

    /// Name ::= SEQUENCE OF SET OF AttributeTypeAndValue.
    static func rfc2253(name: DERReader) throws(Malformed) -> String {
        var name = name
        var rdns: [String] = []
        while !name.isEmpty {
            var set = try name.read(tag: 0x31).contents
            var attributes: [String] = []
            while !set.isEmpty {
                let element = try set.read(tag: 0x30)
                var pair = element.contents
                let oid = try objectIdentifier(pair.read(tag: 0x06).contents.bytes)
                let value = try pair.read()
                // Java's rule: a type without a keyword, or a value that is not a string, is the value's DER in hex.
                if let keyword = keywords[oid], let text = string(value) {
                    attributes.append("\(keyword)=\(escape(text))")
                } else {
                    attributes.append("\(keywords[oid] ?? oid)=#" + value.encoded.map { hex($0) }.joined())
                }
            }
            rdns.append(attributes.joined(separator: "+"))
        }
        return rdns.reversed().joined(separator: ",")
    }

    static func objectIdentifier(_ bytes: ArraySlice<UInt8>) throws(Malformed) -> String {
        guard let first = bytes.first else { throw Malformed() }
        var arcs: [String] = []
        var value: UInt64 = 0
        var started = false
        for byte in bytes {
            // DER: no arc starts with a padding byte 0x80, and every arc fits.
            guard value <= UInt64.max >> 7, started || byte != 0x80 else { throw Malformed() }
            value = value << 7 | UInt64(byte & 0x7F)
            started = true
            if byte & 0x80 == 0 {
                if arcs.isEmpty {
                    let top = min(value / 40, 2)
                    arcs.append("\(top)")
                    arcs.append("\(value - top * 40)")
                } else {
                    arcs.append("\(value)")
                }
                value = 0
                started = false
            }
        }
        guard !started, first != 0x80 else { throw Malformed() }  // the last arc is complete
        return arcs.joined(separator: ".")
    }

    /// The string types Java reads as text (`DerValue.isDerString`); nil for any other, which is
    /// then written in hex, as Java writes it.
    static func string(_ value: DERReader.Element) -> String? {
        let bytes = value.contents.bytes
        switch value.tag {
        case 0x0C:  // UTF8String
            return String(validating: bytes, as: UTF8.self)
        case 0x13, 0x16, 0x14, 0x1B:  // PrintableString, IA5String, T61String, GeneralString: one byte per character
            return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        case 0x1E:  // BMPString: UTF-16BE
            guard bytes.count % 2 == 0 else { return nil }
            let units = stride(from: bytes.startIndex, to: bytes.endIndex, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
            return String(validating: units, as: UTF16.self)
        default:
            return nil
        }
    }

    /// Java's `AVA.toRFC2253String` escaping: `, = + < > # ; " \` wherever they are, NUL as `\00`, and
    /// every leading and trailing space or carriage return. Character by Unicode scalar, as Java's by UTF-16 unit.
    static func escape(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        let isBlank: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\r" }
        let lead = scalars.firstIndex { !isBlank($0) } ?? scalars.count
        let trail = scalars.lastIndex { !isBlank($0) } ?? -1
        var result = String.UnicodeScalarView()
        for (index, scalar) in scalars.enumerated() {
            if scalar == "\0" {
                result.append(contentsOf: "\\00".unicodeScalars)
                continue
            }
            if ",=+<>#;\"\\".unicodeScalars.contains(scalar) || index < lead || index > trail { result.append("\\") }
            result.append(scalar)
        }
        return String(result)
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}

/// Reads DER's tag-length-value elements within the bytes it is given.
struct DERReader {
    struct Element {
        let tag: UInt8
        let contents: DERReader
        /// The whole element, tag and length included.
        let encoded: ArraySlice<UInt8>
    }

    private(set) var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    var isEmpty: Bool { bytes.isEmpty }
    var peekTag: UInt8? { bytes.first }

    mutating func read(tag expected: UInt8) throws(DistinguishedName.Malformed) -> Element {
        let element = try read()
        guard element.tag == expected else { throw DistinguishedName.Malformed() }
        return element
    }

    mutating func read() throws(DistinguishedName.Malformed) -> Element {
        var index = bytes.startIndex
        guard index < bytes.endIndex else { throw DistinguishedName.Malformed() }
        let tag = bytes[index]
        guard tag & 0x1F != 0x1F else { throw DistinguishedName.Malformed() }  // high tag numbers: not in a certificate's name
        index += 1
        guard index < bytes.endIndex else { throw DistinguishedName.Malformed() }
        var length = Int(bytes[index])
        index += 1
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard (1...4).contains(count), bytes.endIndex - index >= count else { throw DistinguishedName.Malformed() }
            length = 0
            for _ in 0..<count {
                length = length << 8 | Int(bytes[index])
                index += 1
            }
        }
        guard length <= bytes.endIndex - index else { throw DistinguishedName.Malformed() }
        let end = index + length
        let element = Element(tag: tag, contents: DERReader(bytes[index..<end]), encoded: bytes[bytes.startIndex..<end])
        bytes = bytes[end...]
        return element
    }
}

import Foundation
import KafkaWire
import NIOCore

// A JSON-lines front end to KafkaWire for the Python interop tests: one request per input line, one
// answer per output line, in order, until EOF. Requests:
//   {"op":"supported","api":N,"kind":"request"|"response"}          -> {"ok":true,"min":a,"max":b}
//   {"op":"roundtrip","api":N,"version":V,"kind":..,"hex":".."}     -> {"ok":true,"hex":".."} (decoded, re-encoded)
//   {"op":"decode_batches","hex":".."}                              -> {"ok":true,"batches":[...]}
//   {"op":"encode_batch","compression":"gzip","baseOffset":0,"records":[...]} -> {"ok":true,"hex":".."}
// Bytes travel as hex; a record is {"offset","timestamp","key","value","headers":[[k,v]]} with null for null.

func hex(_ buffer: ByteBuffer) -> String {
    buffer.readableBytesView.map { String(format: "%02x", $0) }.joined()
}

func bytes(fromHex text: String) throws -> ByteBuffer {
    guard text.count % 2 == 0 else { throw KafkaWireError(.invalidLength, "odd hex length") }
    var buffer = ByteBuffer()
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        guard let byte = UInt8(text[index..<next], radix: 16) else { throw KafkaWireError(.invalidLength, "bad hex") }
        buffer.writeInteger(byte)
        index = next
    }
    return buffer
}

func optionalHex(_ value: Any?) throws -> ByteBuffer? {
    guard let text = value as? String else { return nil }
    return try bytes(fromHex: text)
}

func messageType(_ request: [String: Any]) throws -> any KafkaMessage.Type {
    guard let raw = request["api"] as? Int, let api = ApiKey(rawValue: Int16(raw)) else {
        throw KafkaWireError(.unknownApiKey, "unknown api \(request["api"] ?? "nil")")
    }
    return (request["kind"] as? String) == "response" ? api.responseType : api.requestType
}

func roundTrip<M: KafkaMessage>(_ type: M.Type, _ input: ByteBuffer, version: Int16) throws -> ByteBuffer {
    var buffer = input
    guard M.validVersions.contains(version) else {
        throw KafkaWireError(.unsupportedVersion, "\(M.messageName) v\(version)")
    }
    let message = try M(from: &buffer, version: version)
    guard buffer.readableBytes == 0 else {
        throw KafkaWireError(.invalidLength, "\(buffer.readableBytes) bytes left after decoding")
    }
    return message.encoded(version: version)
}

func recordJSON(_ r: Record) -> [String: Any] {
    [
        "offset": r.offset, "timestamp": r.timestamp,
        "key": r.key.map(hex) ?? NSNull(), "value": r.value.map(hex) ?? NSNull(),
        "headers": r.headers.map { [$0.key, $0.value.map(hex) ?? NSNull()] as [Any] },
    ]
}

func handle(_ request: [String: Any]) throws -> [String: Any] {
    switch request["op"] as? String {
    case "supported":
        let type = try messageType(request)
        return ["ok": true, "min": Int(type.validVersions.lowerBound), "max": Int(type.validVersions.upperBound)]
    case "roundtrip":
        let type = try messageType(request)
        let version = Int16(request["version"] as? Int ?? -1)
        let output = try roundTrip(type, try bytes(fromHex: request["hex"] as? String ?? ""), version: version)
        return ["ok": true, "hex": hex(output)]
    case "decode_batches":
        let batches = try RecordBatch.decodeAll(try bytes(fromHex: request["hex"] as? String ?? ""))
        return ["ok": true, "batches": batches.map { b -> [String: Any] in
            [
                "baseOffset": b.baseOffset, "compression": b.compression.description,
                "producerId": b.producerId, "producerEpoch": Int(b.producerEpoch), "baseSequence": Int(b.baseSequence),
                "isTransactional": b.isTransactional, "isControl": b.isControl,
                "records": b.records.map(recordJSON),
            ]
        }]
    case "encode_batch":
        guard let codec = CompressionCodec(name: request["compression"] as? String ?? "none") else {
            throw KafkaWireError(.compression, "unknown codec \(request["compression"] ?? "nil")")
        }
        let baseOffset = Int64(request["baseOffset"] as? Int ?? 0)
        let records = try (request["records"] as? [[String: Any]] ?? []).enumerated().map { index, r in
            Record(
                offset: Int64(r["offset"] as? Int ?? Int(baseOffset) + index),
                timestamp: Int64(r["timestamp"] as? Int ?? 0),
                key: try optionalHex(r["key"]), value: try optionalHex(r["value"]),
                headers: try (r["headers"] as? [[Any]] ?? []).map {
                    RecordHeader(key: $0.first as? String ?? "", value: try optionalHex($0.count > 1 ? $0[1] : nil))
                })
        }
        let batch = RecordBatch(baseOffset: baseOffset, compression: codec, records: records)
        return ["ok": true, "hex": hex(try batch.encoded())]
    default:
        return ["ok": false, "error": "unknown op \(request["op"] ?? "nil")"]
    }
}

while let line = readLine(strippingNewline: true) {
    guard !line.isEmpty else { continue }
    var answer: [String: Any]
    do {
        guard let request = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw KafkaWireError(.invalidLength, "not a JSON object")
        }
        answer = try handle(request)
    } catch {
        answer = ["ok": false, "error": "\(error)"]
    }
    let data = try JSONSerialization.data(withJSONObject: answer)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}

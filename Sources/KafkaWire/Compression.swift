import CLZ4
import CSnappy
import CZlib
import CZstd
import NIOCore

/// The compression codecs of a record batch (attributes bits 0-2).
public enum CompressionCodec: Int16, CaseIterable, Sendable, CustomStringConvertible {
    case none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4

    /// Kafka's `compression.type` names.
    public var description: String {
        switch self {
        case .none: return "none"
        case .gzip: return "gzip"
        case .snappy: return "snappy"
        case .lz4: return "lz4"
        case .zstd: return "zstd"
        }
    }

    public init?(name: String) {
        guard let codec = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = codec
    }
}

/// Compresses and decompresses the records section of a batch. Decompression is bounded by a limit so
/// that a small hostile payload cannot claim gigabytes.
public enum Compression {
    /// The decompressed size a batch may reach unless the caller says otherwise.
    public static let defaultLimit = 256 * 1024 * 1024

    public static func compress(_ input: ByteBuffer, codec: CompressionCodec) throws -> ByteBuffer {
        switch codec {
        case .none: return input
        case .gzip: return try gzipCompress(input)
        case .snappy: return try snappyXerialCompress(input)
        case .lz4: return try lz4Compress(input)
        case .zstd: return try zstdCompress(input)
        }
    }

    public static func decompress(_ input: ByteBuffer, codec: CompressionCodec, limit: Int = defaultLimit) throws -> ByteBuffer {
        switch codec {
        case .none: return input
        case .gzip: return try gzipDecompress(input, limit: limit)
        case .snappy: return try snappyDecompress(input, limit: limit)
        case .lz4: return try lz4Decompress(input, limit: limit)
        case .zstd: return try zstdDecompress(input, limit: limit)
        }
    }

    static func failure(_ codec: CompressionCodec, _ what: String) -> KafkaWireError {
        KafkaWireError(.compression, "\(codec): \(what)")
    }

    /// Runs a streaming decoder that fills `chunk`-sized windows until it reports the end.
    /// `step` gets the output window and returns (bytes written, finished).
    static func growingOutput(
        codec: CompressionCodec, limit: Int, initial: Int,
        _ step: (UnsafeMutableRawBufferPointer) throws -> (written: Int, finished: Bool)
    ) throws -> ByteBuffer {
        var output = ByteBuffer()
        output.reserveCapacity(min(max(initial, 1024), limit + 1))
        while true {
            let window = min(max(output.writableBytes, 16 * 1024), limit + 1 - output.readableBytes)
            guard window > 0 else { throw failure(codec, "decompressed size exceeds \(limit) bytes") }
            var finished = false
            try output.writeWithUnsafeMutableBytes(minimumWritableBytes: window) { raw in
                let (written, done) = try step(UnsafeMutableRawBufferPointer(rebasing: raw.prefix(window)))
                finished = done
                return written
            }
            if output.readableBytes > limit { throw failure(codec, "decompressed size exceeds \(limit) bytes") }
            if finished { return output }
        }
    }

    // MARK: gzip (zlib with a gzip wrapper)

    static func gzipCompress(_ input: ByteBuffer) throws -> ByteBuffer {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw failure(.gzip, "deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, UInt(input.readableBytes))) + 32
        var output = ByteBuffer()
        _ = try input.withUnsafeReadableBytes { source in
            try output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { target in
                stream.next_in = UnsafeMutablePointer(mutating: source.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = target.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(target.count)
                guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { throw failure(.gzip, "deflate did not finish") }
                return target.count - Int(stream.avail_out)
            }
        }
        return output
    }

    static func gzipDecompress(_ input: ByteBuffer, limit: Int) throws -> ByteBuffer {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw failure(.gzip, "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        return try input.withUnsafeReadableBytes { source in
            stream.next_in = UnsafeMutablePointer(mutating: source.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(source.count)
            return try growingOutput(codec: .gzip, limit: limit, initial: source.count * 4) { window in
                stream.next_out = window.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(window.count)
                let status = inflate(&stream, Z_NO_FLUSH)
                let written = window.count - Int(stream.avail_out)
                switch status {
                case Z_STREAM_END: return (written, true)
                case Z_OK: return (written, false)
                case Z_BUF_ERROR where stream.avail_in == 0: throw failure(.gzip, "truncated stream")
                case Z_BUF_ERROR: return (written, false)
                default: throw failure(.gzip, "corrupt stream (zlib \(status))")
                }
            }
        }
    }

    // MARK: snappy (raw, and the xerial framing Java clients write)

    static let xerialMagic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    static let xerialBlockSize = 32 * 1024

    static func snappyRawCompress(_ source: UnsafeRawBufferPointer, into output: inout ByteBuffer) throws {
        let bound = snappy_max_compressed_length(source.count)
        try output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { target in
            var length = target.count
            guard snappy_compress(source.baseAddress?.assumingMemoryBound(to: CChar.self), source.count,
                                  target.baseAddress?.assumingMemoryBound(to: CChar.self), &length) == SNAPPY_OK else {
                throw failure(.snappy, "compress failed")
            }
            return length
        }
    }

    /// Xerial framing: magic, version 1, compatible version 1, then blocks of [int32 length][raw snappy].
    static func snappyXerialCompress(_ input: ByteBuffer) throws -> ByteBuffer {
        var output = ByteBuffer()
        output.writeBytes(xerialMagic)
        output.writeInteger(Int32(1))
        output.writeInteger(Int32(1))
        try input.withUnsafeReadableBytes { source in
            var offset = 0
            repeat {
                let block = UnsafeRawBufferPointer(rebasing: source[offset..<min(offset + xerialBlockSize, source.count)])
                let lengthAt = output.writerIndex
                output.writeInteger(Int32(0))
                try snappyRawCompress(block, into: &output)
                output.setInteger(Int32(output.writerIndex - lengthAt - 4), at: lengthAt)
                offset += block.count
            } while offset < source.count
        }
        return output
    }

    static func snappyRawDecompress(_ source: UnsafeRawBufferPointer, into output: inout ByteBuffer, limit: Int) throws {
        let input = source.baseAddress?.assumingMemoryBound(to: CChar.self)
        var length = 0
        guard snappy_uncompressed_length(input, source.count, &length) == SNAPPY_OK else {
            throw failure(.snappy, "corrupt block header")
        }
        guard output.readableBytes + length <= limit else { throw failure(.snappy, "decompressed size exceeds \(limit) bytes") }
        try output.writeWithUnsafeMutableBytes(minimumWritableBytes: max(length, 1)) { target in
            var written = target.count
            guard snappy_uncompress(input, source.count, target.baseAddress?.assumingMemoryBound(to: CChar.self), &written) == SNAPPY_OK else {
                throw failure(.snappy, "corrupt block")
            }
            return written
        }
    }

    static func snappyDecompress(_ input: ByteBuffer, limit: Int) throws -> ByteBuffer {
        var output = ByteBuffer()
        try input.withUnsafeReadableBytes { source in
            guard source.count >= 16, source.prefix(8).elementsEqual(xerialMagic) else {
                return try snappyRawDecompress(source, into: &output, limit: limit)
            }
            var offset = 16
            while offset < source.count {
                guard offset + 4 <= source.count else { throw failure(.snappy, "truncated xerial block length") }
                let length = Int(Int32(bigEndian: source.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
                offset += 4
                guard length >= 0, offset + length <= source.count else { throw failure(.snappy, "bad xerial block length \(length)") }
                try snappyRawDecompress(UnsafeRawBufferPointer(rebasing: source[offset..<offset + length]), into: &output, limit: limit)
                offset += length
            }
        }
        return output
    }

    // MARK: lz4 (the LZ4 frame format)

    static func lz4Compress(_ input: ByteBuffer) throws -> ByteBuffer {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.blockSizeID = LZ4F_max64KB
        preferences.frameInfo.blockMode = LZ4F_blockIndependent
        let bound = LZ4F_compressFrameBound(input.readableBytes, &preferences)
        var output = ByteBuffer()
        _ = try input.withUnsafeReadableBytes { source in
            try output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { target in
                let written = LZ4F_compressFrame(target.baseAddress, target.count, source.baseAddress, source.count, &preferences)
                guard LZ4F_isError(written) == 0 else { throw failure(.lz4, "compress failed") }
                return written
            }
        }
        return output
    }

    static func lz4Decompress(_ input: ByteBuffer, limit: Int) throws -> ByteBuffer {
        var context: OpaquePointer?
        guard LZ4F_isError(LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))) == 0, let context else {
            throw failure(.lz4, "cannot create a decompression context")
        }
        defer { LZ4F_freeDecompressionContext(context) }
        return try input.withUnsafeReadableBytes { source in
            var consumed = 0
            return try growingOutput(codec: .lz4, limit: limit, initial: source.count * 4) { window in
                var sourceSize = source.count - consumed
                var targetSize = window.count
                let hint = LZ4F_decompress(context, window.baseAddress, &targetSize,
                                           source.baseAddress.map { $0 + consumed }, &sourceSize, nil)
                guard LZ4F_isError(hint) == 0 else { throw failure(.lz4, "corrupt frame") }
                consumed += sourceSize
                if hint == 0 { return (targetSize, true) }
                if consumed == source.count && targetSize == 0 { throw failure(.lz4, "truncated frame") }
                return (targetSize, false)
            }
        }
    }

    // MARK: zstd

    static func zstdCompress(_ input: ByteBuffer) throws -> ByteBuffer {
        var output = ByteBuffer()
        _ = try input.withUnsafeReadableBytes { source in
            try output.writeWithUnsafeMutableBytes(minimumWritableBytes: ZSTD_compressBound(source.count)) { target in
                let written = ZSTD_compress(target.baseAddress, target.count, source.baseAddress, source.count, 3)
                guard ZSTD_isError(written) == 0 else { throw failure(.zstd, "compress failed") }
                return written
            }
        }
        return output
    }

    /// Streaming, since Java's zstd output does not record the content size.
    static func zstdDecompress(_ input: ByteBuffer, limit: Int) throws -> ByteBuffer {
        guard let stream = ZSTD_createDStream() else { throw failure(.zstd, "cannot create a stream") }
        defer { ZSTD_freeDStream(stream) }
        return try input.withUnsafeReadableBytes { source in
            var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            return try growingOutput(codec: .zstd, limit: limit, initial: source.count * 4) { window in
                var outBuffer = ZSTD_outBuffer(dst: window.baseAddress, size: window.count, pos: 0)
                let hint = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
                guard ZSTD_isError(hint) == 0 else { throw failure(.zstd, "corrupt frame") }
                if hint == 0 && inBuffer.pos == inBuffer.size { return (outBuffer.pos, true) }
                if inBuffer.pos == inBuffer.size && outBuffer.pos < outBuffer.size && hint != 0 {
                    throw failure(.zstd, "truncated frame")
                }
                return (outBuffer.pos, false)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import NIOCore

extension ResponseFrame {
    var hasFileRegions: Bool {
        parts.contains { if case .fileRegion = $0 { true } else { false } }
    }

    /// The frame with every file region read into memory, for a TLS connection: records must be
    /// encrypted, so they cannot go out with sendfile (Kafka copies them through the JVM's heap the
    /// same way). Reads files: run it off the event loop. The duplicated handles are closed.
    func copyingFileRegions() throws -> ResponseFrame {
        defer { for handle in fileHandles { try? handle.close() } }
        var copied: [IOData] = []
        copied.reserveCapacity(parts.count)
        for part in parts {
            guard case .fileRegion(let region) = part else {
                copied.append(part)
                continue
            }
            var buffer = ByteBufferAllocator().buffer(capacity: region.readableBytes)
            try region.fileHandle.withUnsafeFileDescriptor { descriptor in
                var offset = region.readerIndex
                while offset < region.endIndex {
                    let count = region.endIndex - offset
                    var read = 0
                    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
                        read = pread(descriptor, target.baseAddress, count, off_t(offset))
                        return max(read, 0)
                    }
                    guard read > 0 else {
                        if read < 0 && errno == EINTR { continue }
                        throw IOError(errnoCode: read < 0 ? errno : EIO, reason: "reading records for a TLS fetch")
                    }
                    offset += read
                }
            }
            copied.append(.byteBuffer(buffer))
        }
        var frame = ResponseFrame(parts: copied, fileHandles: [])
        frame.throttleMs = throttleMs
        return frame
    }
}

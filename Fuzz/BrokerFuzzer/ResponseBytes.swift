#if canImport(Glibc)
import Glibc
#endif
import MiniBroker
import NIOCore

/// A response frame of the request layer as a client would receive it (the fuzzer and the broker's
/// tests read answers this way).
public enum ResponseBytes {
    /// The bytes of a response after its size prefix, file regions read from their files; the
    /// prefix must match what follows. The file handles are closed, as the connection closes them.
    public static func read(_ response: ResponseFrame) throws -> ByteBuffer {
        var out = ByteBuffer()
        defer { for handle in response.fileHandles { try? handle.close() } }
        for part in response.parts {
            switch part {
            case .byteBuffer(var bytes):
                out.writeBuffer(&bytes)
            case .fileRegion(let region):
                let length = region.readableBytes
                _ = try region.fileHandle.withUnsafeFileDescriptor { fd in
                    try out.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { target in
                        let n = pread(fd, target.baseAddress, length, off_t(region.readerIndex))
                        guard n == length else { throw FuzzFailure(step: -1, message: "short read of a file region: \(n) of \(length)") }
                        return n
                    }
                }
            }
        }
        guard let size = out.readInteger(as: Int32.self), Int(size) == out.readableBytes else {
            throw FuzzFailure(step: -1, message: "the size prefix does not match the \(out.readableBytes) bytes after it")
        }
        return out
    }
}

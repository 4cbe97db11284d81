import CKafkaShim
import NIOCore

/// CRC32C (Castagnoli), the checksum of record batch v2. Uses the SSE4.2 instruction when the CPU has it.
public enum CRC32C {
    public static var isHardwareAccelerated: Bool { kafka_crc32c_hardware_available() != 0 }

    /// Continues `crc` over `bytes` (start with 0).
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        kafka_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    /// The CRC of a buffer's readable bytes.
    @inlinable
    public static func checksum(_ buffer: ByteBuffer) -> UInt32 {
        buffer.withUnsafeReadableBytes { checksum($0) }
    }

    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { checksum($0) }
    }

    /// The table-driven implementation, for machines without SSE4.2 and for cross-checking.
    public static func portableChecksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        kafka_crc32c_portable(crc, bytes.baseAddress, bytes.count)
    }
}

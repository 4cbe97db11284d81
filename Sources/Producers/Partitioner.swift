/// Kafka's default partitioner: murmur2 of the key bytes, exactly as the Java client computes it,
/// so a key lands in the same partition whichever client wrote it. Records without a key stick to
/// one partition until its batch is sent (KIP-480).
public enum Partitioner {
    /// Java's `Utils.murmur2` (seed 0x9747b28c), over signed-byte semantics.
    public static func murmur2(_ data: some Collection<UInt8>) -> Int32 {
        let bytes = Array(data)
        let length = bytes.count
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
        let blocks = length / 4
        for i in 0..<blocks {
            let o = i * 4
            var k = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = blocks * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(bytes[tail + 2]) << 16
            fallthrough
        case 2:
            h ^= UInt32(bytes[tail + 1]) << 8
            fallthrough
        case 1:
            h ^= UInt32(bytes[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// The partition of a key among `count` partitions: `toPositive(murmur2(key)) % count`.
    public static func partition(forKey key: some Collection<UInt8>, count: Int32) -> Int32 {
        (murmur2(key) & 0x7fff_ffff) % count
    }
}

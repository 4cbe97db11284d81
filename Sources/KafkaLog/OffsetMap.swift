/// A key as the cleaner's map holds it: a 128-bit hash of the key's bytes.
///
/// Two SipHash values under the process's random seed, salted apart: a producer cannot choose keys
/// that collide with another's (the seed is secret), and 128 bits make an accidental collision
/// among billions of keys negligible. Keeping hashes rather than keys bounds the map by entries.
struct KeyHash: Equatable {
    let high: UInt64
    let low: UInt64

    init(_ key: UnsafeRawBufferPointer) {
        var a = Hasher(), b = Hasher()
        a.combine(UInt8(0x5A))
        b.combine(UInt8(0xC3))
        a.combine(bytes: key)
        b.combine(bytes: key)
        high = UInt64(bitPattern: Int64(a.finalize()))
        low = UInt64(bitPattern: Int64(b.finalize()))
    }
}

/// The cleaner's key → latest offset map over a log's dirty section (Kafka's SkimpyOffsetMap): open
/// addressing in flat arrays, 24 bytes an entry, sized once from `log.cleaner.dedupe.buffer.size`
/// and filled to at most 90 % (`log.cleaner.io.buffer.load.factor`).
struct OffsetMap {
    static let bytesPerEntry = 24
    static let loadFactor = 0.9

    private var highs: [UInt64]
    private var lows: [UInt64]
    /// -1 marks an empty slot.
    private var offsets: [Int64]
    private let mask: Int
    let maxEntries: Int
    private(set) var count = 0

    /// A map that fits in `bufferBytes`, no larger than `expectedEntries` need (a dirty section of
    /// N offsets holds at most N keys).
    init(bufferBytes: Int, expectedEntries: Int) {
        let affordable = max(16, bufferBytes / Self.bytesPerEntry)
        let wanted = max(16, Int(Double(max(expectedEntries, 1)) / Self.loadFactor) + 1)
        var slots = 16
        while slots < min(affordable, wanted), slots <= Int.max / 4 { slots *= 2 }
        if slots > affordable { slots /= 2 }
        slots = max(slots, 16)
        mask = slots - 1
        maxEntries = Int(Double(slots) * Self.loadFactor)
        highs = [UInt64](repeating: 0, count: slots)
        lows = [UInt64](repeating: 0, count: slots)
        offsets = [Int64](repeating: -1, count: slots)
    }

    var isFull: Bool { count >= maxEntries }

    /// Records `offset` as the latest for `key`. False, with nothing changed, when the key is new
    /// and the map is full.
    mutating func put(_ key: KeyHash, offset: Int64) -> Bool {
        var slot = Int(truncatingIfNeeded: key.low) & mask
        while offsets[slot] >= 0 {
            if highs[slot] == key.high && lows[slot] == key.low {
                offsets[slot] = offset
                return true
            }
            slot = (slot + 1) & mask
        }
        guard count < maxEntries else { return false }
        highs[slot] = key.high
        lows[slot] = key.low
        offsets[slot] = offset
        count += 1
        return true
    }

    /// The latest offset recorded for `key`, nil if none.
    func get(_ key: KeyHash) -> Int64? {
        var slot = Int(truncatingIfNeeded: key.low) & mask
        while offsets[slot] >= 0 {
            if highs[slot] == key.high && lows[slot] == key.low { return offsets[slot] }
            slot = (slot + 1) & mask
        }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#endif

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
/// addressing over one flat table of 24-byte entries, so a lookup costs one cache miss, not one per
/// field. It starts small and doubles while under half full, up to what
/// `log.cleaner.dedupe.buffer.size` affords; at that size it fills to 90 %
/// (`log.cleaner.io.buffer.load.factor`). Owned by one cleaner thread.
final class OffsetMap {
    static let bytesPerEntry = MemoryLayout<Entry>.stride
    static let loadFactor = 0.9

    struct Entry {
        var high: UInt64
        var low: UInt64
        /// -1 marks an empty slot.
        var offset: Int64
    }

    private var table: UnsafeMutableBufferPointer<Entry>
    private var mask: Int
    /// The most slots the buffer affords (a power of two).
    private let maxSlots: Int
    let maxEntries: Int
    private(set) var count = 0

    /// A map that grows to at most `bufferBytes`, starting at what `expectedEntries` suggest
    /// (a dirty section of N offsets holds at most N keys, usually far fewer).
    init(bufferBytes: Int, expectedEntries: Int) {
        let affordable = max(16, bufferBytes / Self.bytesPerEntry)
        var maxSlots = 16
        while maxSlots * 2 <= affordable, maxSlots <= Int.max / 4 { maxSlots *= 2 }
        self.maxSlots = maxSlots
        maxEntries = Int(Double(maxSlots) * Self.loadFactor)
        var slots = 16
        while slots < min(maxSlots, 1 << 16, max(expectedEntries, 1) * 2) { slots *= 2 }
        table = Self.allocate(slots)
        mask = slots - 1
    }

    deinit { Self.free(table) }

    static let hugePage = 2 << 20

    /// A table of `slots` empty entries. One of several megabytes is aligned to, and asks for,
    /// transparent huge pages: lookups land anywhere in it, and with 4 KB pages each one also
    /// missed the TLB (a third of a clean's time on a map of a million keys).
    private static func allocate(_ slots: Int) -> UnsafeMutableBufferPointer<Entry> {
        let bytes = slots * MemoryLayout<Entry>.stride
        var table: UnsafeMutableBufferPointer<Entry>
        var raw: UnsafeMutableRawPointer?
        if bytes >= 2 * hugePage, posix_memalign(&raw, hugePage, bytes) == 0, let raw {
            _ = madvise(raw, bytes, MADV_HUGEPAGE)
            table = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Entry.self, capacity: slots), count: slots)
        } else {
            table = UnsafeMutableBufferPointer<Entry>.allocate(capacity: slots)
        }
        table.initialize(repeating: Entry(high: 0, low: 0, offset: -1))
        return table
    }

    private static func free(_ table: UnsafeMutableBufferPointer<Entry>) {
        if table.count * MemoryLayout<Entry>.stride >= 2 * hugePage {
            Glibc.free(table.baseAddress)
        } else {
            table.deallocate()
        }
    }

    var isFull: Bool { count >= maxEntries }

    /// Records `offset` as the latest for `key`. False, with nothing changed, when the key is new
    /// and the map is full.
    func put(_ key: KeyHash, offset: Int64) -> Bool {
        var slot = Int(truncatingIfNeeded: key.low) & mask
        while table[slot].offset >= 0 {
            if table[slot].high == key.high && table[slot].low == key.low {
                table[slot].offset = offset
                return true
            }
            slot = (slot + 1) & mask
        }
        guard count < maxEntries else { return false }
        if count + 1 > table.count / 2 && table.count < maxSlots {
            grow()
            return put(key, offset: offset)
        }
        table[slot] = Entry(high: key.high, low: key.low, offset: offset)
        count += 1
        return true
    }

    /// The latest offset recorded for `key`, nil if none.
    func get(_ key: KeyHash) -> Int64? {
        var slot = Int(truncatingIfNeeded: key.low) & mask
        while table[slot].offset >= 0 {
            if table[slot].high == key.high && table[slot].low == key.low { return table[slot].offset }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// Doubles the table and re-places every entry.
    private func grow() {
        let old = table
        table = Self.allocate(old.count * 2)
        mask = table.count - 1
        for entry in old where entry.offset >= 0 {
            var slot = Int(truncatingIfNeeded: entry.low) & mask
            while table[slot].offset >= 0 { slot = (slot + 1) & mask }
            table[slot] = entry
        }
        Self.free(old)
    }
}

import NIOCore

/// A fixed-size entry of an index file.
protocol IndexEntry {
    static var size: Int { get }
    init?(reading: inout ByteBuffer)
    func write(into: inout ByteBuffer)
    /// No negative offsets or positions.
    var isValid: Bool { get }
    /// Entries ascend: may `self` follow `previous`?
    func canFollow(_ previous: Self) -> Bool
}

/// The entries of an index file, kept in memory, written to the file when flushed (so that after an
/// unclean stop the index is rebuilt from the segment by recovery, as Kafka rebuilds its indexes).
struct IndexFile<Entry: IndexEntry> {
    let file: LogFile
    private(set) var entries: [Entry] = []
    private var persisted = 0

    init(path: String, load: Bool) throws {
        file = try LogFile(path: path, create: true)
        guard load else {
            try file.truncate(to: 0)
            return
        }
        guard file.size % Entry.size == 0 else {
            throw LogError(.corrupt, "\(path): size \(file.size) is not a multiple of \(Entry.size)")
        }
        var bytes = try file.read(at: 0, length: file.size)
        while let entry = Entry(reading: &bytes) {
            guard entry.isValid, entries.last.map(entry.canFollow) ?? true else {
                throw LogError(.corrupt, "\(path): entry \(entries.count) is out of order")
            }
            entries.append(entry)
        }
        persisted = entries.count
    }

    mutating func append(_ entry: Entry) {
        entries.append(entry)
    }

    mutating func reset() throws {
        entries.removeAll()
        persisted = 0
        try file.truncate(to: 0)
    }

    /// The index of the last entry for which `isAtOrBefore` holds (entries are sorted), or nil.
    func lastIndex(where isAtOrBefore: (Entry) -> Bool) -> Int? {
        var low = 0, high = entries.count - 1, found: Int?
        while low <= high {
            let mid = (low + high) / 2
            if isAtOrBefore(entries[mid]) { found = mid; low = mid + 1 } else { high = mid - 1 }
        }
        return found
    }

    /// Writes the entries not yet in the file, then optionally fsyncs.
    mutating func flush(sync: Bool) throws {
        if file.size != persisted * Entry.size { try file.truncate(to: persisted * Entry.size) }
        if persisted < entries.count {
            var bytes = ByteBuffer()
            for entry in entries[persisted...] { entry.write(into: &bytes) }
            try file.append(bytes)
            persisted = entries.count
        }
        if sync { try file.flush() }
    }
}

/// An index file of a segment and the segment's base offset, which its relative offsets count from.
class SegmentIndex<Entry: IndexEntry> {
    let baseOffset: Int64
    var index: IndexFile<Entry>
    var file: LogFile { index.file }

    init(path: String, baseOffset: Int64, load: Bool) throws {
        self.baseOffset = baseOffset
        index = try IndexFile(path: path, load: load)
    }

    func reset() throws { try index.reset() }

    func flush(sync: Bool) throws { try index.flush(sync: sync) }
}

/// An `.index` entry: relative offset (int32) and file position (int32).
struct OffsetIndexEntry: IndexEntry {
    static let size = 8
    var relativeOffset: Int32
    var position: Int32

    init(relativeOffset: Int32, position: Int32) {
        self.relativeOffset = relativeOffset
        self.position = position
    }

    init?(reading bytes: inout ByteBuffer) {
        guard let r = bytes.readInteger(as: Int32.self), let p = bytes.readInteger(as: Int32.self) else { return nil }
        self.init(relativeOffset: r, position: p)
    }

    func write(into bytes: inout ByteBuffer) {
        bytes.writeInteger(relativeOffset)
        bytes.writeInteger(position)
    }

    var isValid: Bool { relativeOffset >= 0 && position >= 0 }
    func canFollow(_ previous: OffsetIndexEntry) -> Bool { relativeOffset >= previous.relativeOffset && position >= previous.position }
}

/// `.index`: 8-byte entries of relative offset (int32, from the segment's base offset) and file
/// position (int32). An entry maps the last offset of a batch to that batch's position, one per
/// `index.interval.bytes`; a lookup finds where to start scanning batch headers.
final class OffsetIndex: SegmentIndex<OffsetIndexEntry> {
    var count: Int { index.entries.count }
    var lastEntry: (offset: Int64, position: Int)? {
        index.entries.last.map { (baseOffset + Int64($0.relativeOffset), Int($0.position)) }
    }

    /// An entry that does not fit the file's 32-bit fields (a corrupt batch header's offsets) is
    /// left out: the index is sparse, a lookup then scans further.
    func append(offset: Int64, position: Int) {
        guard let relative = Int32(exactly: offset.subtractingReportingOverflow(baseOffset).partialValue),
              let position = Int32(exactly: position), relative >= 0 else { return }
        if let last = index.entries.last, relative <= last.relativeOffset { return }
        index.append(OffsetIndexEntry(relativeOffset: relative, position: position))
    }

    /// The entry with the largest offset <= `offset`, or the segment start.
    func lookup(_ offset: Int64) -> (offset: Int64, position: Int) {
        let target = offset - baseOffset
        guard let i = index.lastIndex(where: { Int64($0.relativeOffset) <= target }) else { return (baseOffset, 0) }
        return (baseOffset + Int64(index.entries[i].relativeOffset), Int(index.entries[i].position))
    }
}

/// A `.timeindex` entry: timestamp (int64) and relative offset (int32).
struct TimeIndexEntry: IndexEntry {
    static let size = 12
    var timestamp: Int64
    var relativeOffset: Int32

    init(timestamp: Int64, relativeOffset: Int32) {
        self.timestamp = timestamp
        self.relativeOffset = relativeOffset
    }

    init?(reading bytes: inout ByteBuffer) {
        guard let t = bytes.readInteger(as: Int64.self), let r = bytes.readInteger(as: Int32.self) else { return nil }
        self.init(timestamp: t, relativeOffset: r)
    }

    func write(into bytes: inout ByteBuffer) {
        bytes.writeInteger(timestamp)
        bytes.writeInteger(relativeOffset)
    }

    var isValid: Bool { relativeOffset >= 0 }
    func canFollow(_ previous: TimeIndexEntry) -> Bool { timestamp >= previous.timestamp && relativeOffset >= previous.relativeOffset }
}

/// `.timeindex`: 12-byte entries of timestamp (int64) and relative offset (int32), added when the
/// segment's largest timestamp grows, so timestamps ascend.
final class TimeIndex: SegmentIndex<TimeIndexEntry> {
    var lastEntry: (timestamp: Int64, offset: Int64)? {
        index.entries.last.map { ($0.timestamp, baseOffset + Int64($0.relativeOffset)) }
    }

    func maybeAppend(timestamp: Int64, offset: Int64) {
        if let last = index.entries.last, timestamp <= last.timestamp { return }
        guard let relative = Int32(exactly: offset.subtractingReportingOverflow(baseOffset).partialValue), relative >= 0 else { return }
        index.append(TimeIndexEntry(timestamp: timestamp, relativeOffset: relative))
    }

    /// The offset to start scanning from for the first record with a timestamp >= `timestamp`:
    /// the offset of the last entry whose timestamp is below it, or the segment start.
    func lookup(_ timestamp: Int64) -> Int64 {
        guard let i = index.lastIndex(where: { $0.timestamp < timestamp }) else { return baseOffset }
        return baseOffset + Int64(index.entries[i].relativeOffset)
    }
}

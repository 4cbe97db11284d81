import NIOCore

/// An aborted transaction of one producer in one partition: its records run from `firstOffset` to
/// the abort marker at `lastOffset`. A read_committed fetch hands these to the consumer, which drops
/// the producer's transactional records from `firstOffset` until it meets the marker.
public struct AbortedTransaction: Equatable, Sendable {
    public var producerId: Int64
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The partition's last stable offset once the abort completed (Kafka keeps it; nothing reads it yet).
    public var lastStableOffset: Int64

    public init(producerId: Int64, firstOffset: Int64, lastOffset: Int64, lastStableOffset: Int64) {
        self.producerId = producerId
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.lastStableOffset = lastStableOffset
    }
}

/// A segment's `.txnindex` (Kafka's format): 34-byte entries of version int16 (0), producer id
/// int64, first offset int64, last offset int64 and last stable offset int64, one per abort marker
/// in the segment, in marker order. Created with the segment's first abort; the entries are kept in
/// memory too (they are few), the file is what survives a restart.
final class TransactionIndex {
    static let entrySize = 34
    static let version: Int16 = 0
    let path: String
    private var file: LogFile?
    private(set) var entries: [AbortedTransaction] = []

    /// Reads the file when there is one. A torn last entry (a crash mid-write) is cut; a damaged
    /// one throws (the caller rebuilds the index from the log).
    init(path: String) throws {
        self.path = path
        guard LogDirectory.exists(path) else { return }
        let file = try LogFile(path: path, create: false)
        let whole = file.size - file.size % Self.entrySize
        if whole < file.size { try file.truncate(to: whole) }
        var bytes = try file.read(at: 0, length: whole)
        while bytes.readableBytes >= Self.entrySize {
            guard bytes.readInteger(as: Int16.self) == Self.version,
                  let producerId = bytes.readInteger(as: Int64.self), let first = bytes.readInteger(as: Int64.self),
                  let last = bytes.readInteger(as: Int64.self), let lso = bytes.readInteger(as: Int64.self),
                  producerId >= 0, first >= 0, first <= last else {
                throw LogError(.corrupt, "\(path): entry \(entries.count) is not an aborted transaction")
            }
            entries.append(AbortedTransaction(producerId: producerId, firstOffset: first, lastOffset: last, lastStableOffset: lso))
        }
        self.file = file
    }

    func append(_ entry: AbortedTransaction) throws {
        var bytes = ByteBuffer()
        bytes.writeInteger(Self.version)
        bytes.writeInteger(entry.producerId)
        bytes.writeInteger(entry.firstOffset)
        bytes.writeInteger(entry.lastOffset)
        bytes.writeInteger(entry.lastStableOffset)
        if file == nil { file = try LogFile(path: path, create: true) }
        try file?.append(bytes)
        entries.append(entry)
    }

    /// Drops the entries whose marker is at or after `offset` (a recovery replays them again).
    func truncate(from offset: Int64) throws {
        guard let keep = entries.firstIndex(where: { $0.lastOffset >= offset }) else { return }
        entries.removeSubrange(keep...)
        try file?.truncate(to: keep * Self.entrySize)
    }

    func reset() throws {
        entries = []
        try file?.truncate(to: 0)
    }

    var syncFile: SegmentFile? { file?.file }

    func delete() throws { try LogDirectory.remove(path) }
}

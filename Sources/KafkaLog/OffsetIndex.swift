import NIOCore

/// The sparse offset index of a segment (`.index`): 8-byte entries of relative offset (int32, from
/// the segment's base offset) and file position (int32), ascending. An entry maps the last offset of
/// a batch to that batch's position; a lookup finds where to start scanning batch headers.
///
/// Entries live in memory; the file is written when the segment is flushed or closed, so after an
/// unclean stop the index is rebuilt from the segment by recovery (as Kafka rebuilds its indexes).
public final class OffsetIndex: @unchecked Sendable {
    public static let entrySize = 8
    public let baseOffset: Int64
    let file: LogFile
    private(set) var relativeOffsets: [Int32] = []
    private(set) var positions: [Int32] = []
    private var persisted = 0

    public init(path: String, baseOffset: Int64, load: Bool) throws {
        self.baseOffset = baseOffset
        file = try LogFile(path: path, create: true)
        guard load else {
            try file.truncate(to: 0)
            return
        }
        guard file.size % Self.entrySize == 0 else {
            throw LogError(.corrupt, "\(path): size \(file.size) is not a multiple of \(Self.entrySize)")
        }
        var bytes = try file.read(at: 0, length: file.size)
        while let relative = bytes.readInteger(as: Int32.self), let position = bytes.readInteger(as: Int32.self) {
            guard relative >= 0, position >= 0, relative >= (relativeOffsets.last ?? 0),
                  position >= (positions.last ?? 0) else {
                throw LogError(.corrupt, "\(path): entry \(relativeOffsets.count) is out of order")
            }
            relativeOffsets.append(relative)
            positions.append(position)
        }
        persisted = relativeOffsets.count
    }

    public var count: Int { relativeOffsets.count }
    public var lastEntry: (offset: Int64, position: Int)? {
        guard let r = relativeOffsets.last, let p = positions.last else { return nil }
        return (baseOffset + Int64(r), Int(p))
    }

    public func append(offset: Int64, position: Int) {
        let relative = Int32(offset - baseOffset)
        if let last = relativeOffsets.last, relative <= last { return }
        relativeOffsets.append(relative)
        positions.append(Int32(position))
    }

    /// The entry with the largest offset <= `offset`, or the segment start.
    public func lookup(_ offset: Int64) -> (offset: Int64, position: Int) {
        let target = offset - baseOffset
        var low = 0, high = relativeOffsets.count - 1, found = -1
        while low <= high {
            let mid = (low + high) / 2
            if Int64(relativeOffsets[mid]) <= target { found = mid; low = mid + 1 } else { high = mid - 1 }
        }
        return found < 0 ? (baseOffset, 0) : (baseOffset + Int64(relativeOffsets[found]), Int(positions[found]))
    }

    /// Drops entries at or past `position` (the segment is being truncated there).
    public func truncate(toPosition position: Int) {
        while let last = positions.last, Int(last) >= position {
            positions.removeLast()
            relativeOffsets.removeLast()
        }
        persisted = min(persisted, relativeOffsets.count)
    }

    public func reset() throws {
        relativeOffsets.removeAll()
        positions.removeAll()
        persisted = 0
        try file.truncate(to: 0)
    }

    /// Writes entries not yet in the file (and trims the file to the entries).
    public func flush(sync: Bool) throws {
        if file.size != persisted * Self.entrySize { try file.truncate(to: persisted * Self.entrySize) }
        if persisted < relativeOffsets.count {
            var bytes = ByteBuffer()
            for i in persisted..<relativeOffsets.count {
                bytes.writeInteger(relativeOffsets[i])
                bytes.writeInteger(positions[i])
            }
            try file.append(bytes)
            persisted = relativeOffsets.count
        }
        if sync { try file.flush() }
    }
}

/// The time index of a segment (`.timeindex`): 12-byte entries of timestamp (int64) and relative
/// offset (int32), added when the segment's largest timestamp grows, so timestamps ascend.
public final class TimeIndex: @unchecked Sendable {
    public static let entrySize = 12
    public let baseOffset: Int64
    let file: LogFile
    private(set) var timestamps: [Int64] = []
    private(set) var relativeOffsets: [Int32] = []
    private var persisted = 0

    public init(path: String, baseOffset: Int64, load: Bool) throws {
        self.baseOffset = baseOffset
        file = try LogFile(path: path, create: true)
        guard load else {
            try file.truncate(to: 0)
            return
        }
        guard file.size % Self.entrySize == 0 else {
            throw LogError(.corrupt, "\(path): size \(file.size) is not a multiple of \(Self.entrySize)")
        }
        var bytes = try file.read(at: 0, length: file.size)
        while let timestamp = bytes.readInteger(as: Int64.self), let relative = bytes.readInteger(as: Int32.self) {
            guard relative >= 0, timestamp >= (timestamps.last ?? Int64.min), relative >= (relativeOffsets.last ?? 0) else {
                throw LogError(.corrupt, "\(path): entry \(timestamps.count) is out of order")
            }
            timestamps.append(timestamp)
            relativeOffsets.append(relative)
        }
        persisted = timestamps.count
    }

    public var lastEntry: (timestamp: Int64, offset: Int64)? {
        guard let t = timestamps.last, let r = relativeOffsets.last else { return nil }
        return (t, baseOffset + Int64(r))
    }

    public func maybeAppend(timestamp: Int64, offset: Int64) {
        if let last = timestamps.last, timestamp <= last { return }
        timestamps.append(timestamp)
        relativeOffsets.append(Int32(offset - baseOffset))
    }

    /// The offset to start scanning from for the first record with a timestamp >= `timestamp`:
    /// the offset of the last entry whose timestamp is below it, or the segment start.
    public func lookup(_ timestamp: Int64) -> Int64 {
        var low = 0, high = timestamps.count - 1, found = -1
        while low <= high {
            let mid = (low + high) / 2
            if timestamps[mid] < timestamp { found = mid; low = mid + 1 } else { high = mid - 1 }
        }
        return found < 0 ? baseOffset : baseOffset + Int64(relativeOffsets[found])
    }

    public func truncate(toOffset offset: Int64) {
        while let last = relativeOffsets.last, baseOffset + Int64(last) >= offset {
            relativeOffsets.removeLast()
            timestamps.removeLast()
        }
        persisted = min(persisted, timestamps.count)
    }

    public func reset() throws {
        timestamps.removeAll()
        relativeOffsets.removeAll()
        persisted = 0
        try file.truncate(to: 0)
    }

    public func flush(sync: Bool) throws {
        if file.size != persisted * Self.entrySize { try file.truncate(to: persisted * Self.entrySize) }
        if persisted < timestamps.count {
            var bytes = ByteBuffer()
            for i in persisted..<timestamps.count {
                bytes.writeInteger(timestamps[i])
                bytes.writeInteger(relativeOffsets[i])
            }
            try file.append(bytes)
            persisted = timestamps.count
        }
        if sync { try file.flush() }
    }
}

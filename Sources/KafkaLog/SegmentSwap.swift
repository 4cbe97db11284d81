import Logging
import NIOCore

/// How a cleaned segment replaces the segments it was made from, so that a crash at any moment
/// leaves either the old segments or the new one, never both halves (Kafka's `.cleaned` → `.swap`):
///
///  1. the cleaner writes `<base>.log.cleaned` (and its indexes) and fsyncs them, with
///     `<base>.swapend.cleaned` naming the end of the range it replaces (the base offset of the
///     segment after the last one replaced: a clean may leave no record to tell it);
///  2. under the partition's lock the `.cleaned` files are renamed `.swap`, the log last: its
///     `.log.swap` is the commit point;
///  3. the replaced segments' files are unlinked and the `.swap` files renamed to their final names
///     (the log last again).
///
/// At start-up (`recover`), `.cleaned` files and a `.swap` without its `.log.swap` are leftovers of
/// a clean that did not commit: removed, the old segments stand. A `.log.swap` is a committed clean:
/// every segment in its range is removed and the swap finished (its indexes are rebuilt).
enum SegmentSwap {
    static let cleanedSuffix = ".cleaned"
    static let swapSuffix = ".swap"
    static let endSuffix = ".swapend"

    static func path(_ directory: String, _ base: Int64, _ fileSuffix: String, _ state: String) -> String {
        directory + "/" + LogSegment.fileName(base, fileSuffix) + state
    }

    /// Removes whatever a clean of `base` left as `.cleaned` files (before writing, or after an abort).
    static func removeCleaned(_ directory: String, _ base: Int64) throws {
        for suffix in LogSegment.fileSuffixes + [endSuffix] {
            try LogDirectory.remove(path(directory, base, suffix, cleanedSuffix))
            try LogDirectory.remove(path(directory, base, suffix, swapSuffix))
        }
    }

    /// Writes the end of the replaced range beside the cleaned files (step 1).
    static func writeEnd(_ directory: String, _ base: Int64, end: Int64) throws {
        let file = try LogFile(path: path(directory, base, endSuffix, cleanedSuffix), create: true)
        try file.truncate(to: 0)
        try file.append(ByteBuffer(string: "\(end)\n"))
        try file.flush()
    }

    /// Step 2: `.cleaned` → `.swap`, the log last. Once this returns the clean is committed.
    static func commit(_ directory: String, _ base: Int64) throws {
        for suffix in [".index", ".timeindex", endSuffix, ".log"] {
            try LogDirectory.rename(path(directory, base, suffix, cleanedSuffix), path(directory, base, suffix, swapSuffix))
        }
    }

    /// Step 3 (after the replaced segments' files are gone): `.swap` → final names, the log last.
    static func finish(_ directory: String, _ base: Int64) throws {
        for suffix in [".index", ".timeindex", ".log"] {
            try LogDirectory.rename(path(directory, base, suffix, swapSuffix), directory + "/" + LogSegment.fileName(base, suffix))
        }
        try LogDirectory.remove(path(directory, base, endSuffix, swapSuffix))
    }

    /// Start-up: rolls back uncommitted cleans and completes committed ones (see above).
    static func recover(_ directory: String, logger: Logger) throws {
        let names = try LogDirectory.list(directory)
        let uncommitted = names.filter { $0.hasSuffix(cleanedSuffix) }
        for name in uncommitted { try LogDirectory.remove(directory + "/" + name) }
        if !uncommitted.isEmpty {
            logger.info("rolled back a clean interrupted before it committed: removed \(uncommitted.count) file(s) in \(directory)")
        }
        let committed = Set(names.compactMap { LogSegment.baseOffset(fromFileName: $0, suffix: ".log" + swapSuffix) })
        for name in names where name.hasSuffix(swapSuffix) && !name.hasSuffix(".log" + swapSuffix) {
            let base = name.split(separator: ".").first.flatMap { Int64($0) }
            if base.map({ !committed.contains($0) }) ?? true { try LogDirectory.remove(directory + "/" + name) }
        }
        for base in committed.sorted() {
            let end = try replacedEnd(directory, base)
            // Every file of the range goes, a log already unlinked leaving its indexes included, and
            // the swap's own indexes: recovery rebuilds them from the log, which is the truth.
            for other in names {
                for suffix in LogSegment.fileSuffixes {
                    guard let otherBase = LogSegment.baseOffset(fromFileName: other, suffix: suffix), otherBase >= base, otherBase < end else { continue }
                    try LogDirectory.remove(directory + "/" + other)
                }
            }
            try LogDirectory.remove(path(directory, base, ".index", swapSuffix))
            try LogDirectory.remove(path(directory, base, ".timeindex", swapSuffix))
            try LogDirectory.rename(path(directory, base, ".log", swapSuffix), directory + "/" + LogSegment.fileName(base, ".log"))
            try LogDirectory.remove(path(directory, base, endSuffix, swapSuffix))
            logger.warning("completed an interrupted clean of \(directory): segment \(base) replaces offsets up to \(end)")
        }
        if !committed.isEmpty { LogDirectory.syncDirectory(directory) }
    }

    /// The end of the offsets a committed swap replaces: its `.swapend`, else (a file from another
    /// tool) one past the swap's last batch.
    private static func replacedEnd(_ directory: String, _ base: Int64) throws -> Int64 {
        if let text = try LogDirectory.readText(path(directory, base, endSuffix, swapSuffix)),
           let end = Int64(text.split(separator: "\n").first ?? ""), end > base {
            return end
        }
        // Without it, at least the segment the swap is named after.
        let log = try LogFile(path: path(directory, base, ".log", swapSuffix), create: false)
        var end = base + 1
        try LogSegment.scanHeaders(log.file, from: 0, limit: log.size) { batch, _ in
            end = max(end, batch.lastOffset + 1)
            return true
        }
        return end
    }
}

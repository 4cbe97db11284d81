#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Errors of the storage layer. `path` names the file so that an operator can find it.
public struct LogError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// A system call failed (disk full, read-only file system, permissions...).
        case io
        /// Stored data does not parse (a corrupt index or checkpoint).
        case corrupt
        /// The caller asked for something the log cannot do (offset out of range...).
        case invalidRequest
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static func io(_ operation: String, _ path: String, errno code: Int32 = errno) -> LogError {
        LogError(.io, "\(operation) \(path): \(String(cString: strerror(code)))")
    }

    public var description: String { message }
}

/// An open file descriptor of the log, immutable and so shareable: readers on any thread read
/// positional ranges through it (a fetch's sendfile, a timestamp lookup) while the owner appends. It
/// closes when the last holder lets go, so a segment deleted meanwhile stays readable.
public final class SegmentFile: Sendable {
    public let path: String
    public let descriptor: Int32

    init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Reads up to `length` bytes at `position` (fewer at the end of the file). Readers pass lengths
    /// they took under the partition's lock, below what appends have written.
    public func read(at position: Int, length: Int) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        let wanted = max(0, length)
        guard wanted > 0 else { return buffer }
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { target in
            var done = 0
            while done < wanted {
                let n = pread(descriptor, target.baseAddress! + done, wanted - done, off_t(position + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw LogError.io("read", path)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        return buffer
    }

    /// Reads a big-endian integer at `position`, nil past the end.
    public func readInteger<T: FixedWidthInteger>(at position: Int, as: T.Type = T.self) throws -> T? {
        var value = T.zero
        let n = withUnsafeMutableBytes(of: &value) { pread(descriptor, $0.baseAddress, MemoryLayout<T>.size, off_t(position)) }
        if n < 0 { throw LogError.io("read", path) }
        return n == MemoryLayout<T>.size ? T(bigEndian: value) : nil
    }

    /// fdatasync: the data (and the size) reach the disk. Blocks: never on an event loop.
    public func sync() throws {
        guard fdatasync(descriptor) == 0 else { throw LogError.io("fsync", path) }
    }

    /// When the file was last written (ms): a segment's age, as Kafka's cleaner judges tombstones by.
    public func lastModifiedMs() throws -> Int64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw LogError.io("stat", path) }
        let (ms, overflow) = Int64(info.st_mtim.tv_sec).multipliedReportingOverflow(by: 1000)
        return overflow ? Int64.max : ms + Int64(info.st_mtim.tv_nsec) / 1_000_000
    }

    /// Sets the modification time: a cleaned segment keeps the age of the data it holds.
    func setLastModified(ms: Int64) throws {
        let time = timespec(tv_sec: Int(ms / 1000), tv_nsec: Int(ms % 1000) * 1_000_000)
        var times = [time, time]
        guard futimens(descriptor, &times) == 0 else { throw LogError.io("futimens", path) }
    }
}

/// A file of the log (segment data or index) as its owner sees it: written at its end, its size
/// moved by appends and truncation. Not shared: readers elsewhere get the `SegmentFile`.
public final class LogFile {
    public let file: SegmentFile
    public var path: String { file.path }
    public var descriptor: Int32 { file.descriptor }
    /// Bytes in the file as far as the log is concerned (appends advance it).
    public private(set) var size: Int

    public init(path: String, create: Bool) throws {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else { throw LogError.io("open", path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            throw LogError.io("stat", path)
        }
        file = SegmentFile(path: path, descriptor: fd)
        size = Int(info.st_size)
    }

    /// Writes `bytes` at the end with as few system calls as the kernel allows (one, normally).
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        try write(bytes, at: size)
        size += bytes.count
    }

    /// Writes several pieces at the end with one `pwritev`.
    public func append(_ pieces: [UnsafeRawBufferPointer]) throws {
        var iovecs = pieces.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var remaining = pieces.reduce(0) { $0 + $1.count }
        var offset = size
        var first = 0  // pieces already written; at most IOV_MAX (1024 on Linux) per call
        while remaining > 0 {
            let written = iovecs[first...].withUnsafeBufferPointer {
                pwritev(descriptor, $0.baseAddress, Int32(min($0.count, 1024)), off_t(offset))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw LogError.io("write", path)
            }
            remaining -= written
            offset += written
            // Skip the pieces written whole and trim the one written in part.
            var done = written
            while first < iovecs.count, done >= iovecs[first].iov_len {
                done -= iovecs[first].iov_len
                first += 1
            }
            if first < iovecs.count, done > 0 {
                iovecs[first].iov_base = iovecs[first].iov_base.map { $0 + done }
                iovecs[first].iov_len -= done
            }
        }
        size = offset
    }

    public func append(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { try append($0) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at position: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(position + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.io("write", path)
            }
            done += n
        }
    }

    public func read(at position: Int, length: Int) throws -> ByteBuffer { try file.read(at: position, length: length) }

    public func readInteger<T: FixedWidthInteger>(at position: Int, as: T.Type = T.self) throws -> T? {
        try file.readInteger(at: position, as: T.self)
    }

    public func truncate(to newSize: Int) throws {
        guard ftruncate(descriptor, off_t(newSize)) == 0 else { throw LogError.io("truncate", path) }
        size = newSize
    }

    /// fdatasync: the data (and the size) reach the disk.
    public func flush() throws { try file.sync() }
}

/// File system helpers for the log directory.
public enum LogDirectory {
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    public static func create(_ path: String) throws {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 && errno != EEXIST { throw LogError.io("mkdir", partial) }
        }
    }

    /// The file system's size and the bytes an unprivileged writer may still use, nil when unknown.
    public static func space(_ path: String) -> (total: Int64, usable: Int64)? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let block = Int64(info.f_frsize)
        let (total, o1) = Int64(info.f_blocks).multipliedReportingOverflow(by: block)
        let (usable, o2) = Int64(info.f_bavail).multipliedReportingOverflow(by: block)
        return (o1 ? Int64.max : total, o2 ? Int64.max : usable)
    }

    /// `path` made absolute against the working directory, as Kafka names log directories.
    public static func absolutePath(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let relative = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        return (cwd == "/" ? "" : cwd) + "/" + relative
    }

    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw LogError.io("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw LogError.io("unlink", path) }
    }

    /// Deletes a directory and everything in it.
    public static func removeTree(_ path: String) throws {
        guard isDirectory(path) else { return try remove(path) }
        for name in try list(path) { try removeTree(path + "/" + name) }
        if rmdir(path) != 0 && errno != ENOENT { throw LogError.io("rmdir", path) }
    }

    public static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw LogError.io("rename", from) }
    }

    /// Writes a small file atomically: a temporary beside it, fsync, rename over, fsync the directory.
    public static func writeAtomically(_ contents: String, to path: String, mode: mode_t = 0o644) throws {
        let temporary = path + ".tmp"
        // A leftover temporary file keeps its old mode through O_CREAT: start from none.
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw LogError.io("open", temporary) }
        let ok = contents.utf8CString.withUnsafeBufferPointer { raw -> Bool in
            var done = 0
            let count = raw.count - 1  // without the NUL
            while done < count {
                let n = Glibc.write(fd, raw.baseAddress! + done, count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return fsync(fd) == 0
        }
        close(fd)
        guard ok else { throw LogError.io("write", temporary) }
        try rename(temporary, path)
        syncDirectory(parent(of: path))
    }

    public static func readText(_ path: String) throws -> String? {
        guard exists(path) else { return nil }
        let file = try LogFile(path: path, create: false)
        let bytes = try file.read(at: 0, length: file.size)
        return String(buffer: bytes)
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}

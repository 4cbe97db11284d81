import NIOConcurrencyHelpers

/// A value behind a pthread mutex, lent to one closure at a time: `Synchronization.Mutex`'s contract
/// (the value goes in and out as `sending`, so the compiler checks that nothing non-Sendable escapes
/// the lock with it) on a lock ThreadSanitizer can see. Mutex's futex lives in the standard library,
/// which is not built for TSan, so TSan took the accesses it orders for races; a pthread mutex it
/// intercepts.
public final class SendingLock<Value: ~Copyable>: @unchecked Sendable {
    private let lock = NIOLock()
    /// Reached only inside `withLock`, under `lock`.
    private let storage: UnsafeMutablePointer<Value>

    public init(_ value: consuming sending Value) {
        storage = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        storage.initialize(to: value)
    }

    deinit {
        storage.deinitialize(count: 1)
        storage.deallocate()
    }

    public func withLock<Result: ~Copyable, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&storage.pointee)
    }
}

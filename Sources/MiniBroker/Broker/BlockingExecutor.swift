import NIOCore
import NIOPosix

/// Where work that can block for milliseconds runs: fsync, creating and deleting files, writing
/// checkpoints. Never on an event loop, where it would stall every connection of that loop: the
/// server gives a thread pool; tests and the fuzzer, which drive the request layer on an embedded
/// loop, run it in place.
public struct BlockingExecutor: Sendable {
    private let pool: NIOThreadPool?

    /// Runs blocking work on `pool`'s threads.
    public static func threadPool(_ pool: NIOThreadPool) -> BlockingExecutor { BlockingExecutor(pool: pool) }

    /// Runs the work where it is asked for (only where no event loop serves connections).
    public static let inPlace = BlockingExecutor(pool: nil)

    /// `body`'s result, as a future of `loop`.
    public func run<T: Sendable>(on loop: EventLoop, _ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        guard let pool else { return loop.makeCompletedFuture { try body() } }
        return pool.runIfActive(eventLoop: loop, body)
    }
}

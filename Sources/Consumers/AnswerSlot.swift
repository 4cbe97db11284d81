import KafkaClient
import NIOConcurrencyHelpers

/// The answer to a request that is awaited later (a Fetch on the wire while the application works):
/// filled on the connection's event loop, awaited once from the consumer. Cheaper than awaiting an
/// EventLoopFuture from off its loop, which first hops to the loop to listen.
final class AnswerSlot<Value: Sendable>: Sendable {
    private enum State {
        case waiting(CheckedContinuation<Value, Error>?)
        case answered(Result<Value, KafkaClientError>)
    }
    private let state = NIOLockedValueBox(State.waiting(nil))
    /// Runs on the event loop with an answer the consumer is already waiting for, before it wakes:
    /// what the consumer would do first on waking (send the next Fetch) costs no hop there and back.
    private let whenAwaited: (@Sendable (Value) -> Void)?

    init(whenAwaited: (@Sendable (Value) -> Void)? = nil) {
        self.whenAwaited = whenAwaited
    }

    func fill(_ result: Result<Value, KafkaClientError>) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Value, Error>? in
            guard case .waiting(let waiter) = state else { return nil }
            state = .answered(result)
            return waiter
        }
        guard let waiter else { return }
        if let whenAwaited, case .success(let value) = result { whenAwaited(value) }
        waiter.resume(with: result)
    }

    /// The answer, once it came. One awaiter at a time. A cancelled awaiter stops waiting at once
    /// (CancellationError); the answer, when it comes, is kept for nobody.
    var value: Value {
        get async throws {
            let ready = state.withLockedValue { state -> Result<Value, KafkaClientError>? in
                if case .answered(let result) = state { return result } else { return nil }
            }
            if let ready { return try ready.get() }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let answered = state.withLockedValue { state -> Result<Value, KafkaClientError>? in
                        switch state {
                        case .answered(let result): return result
                        case .waiting: state = .waiting(continuation); return nil
                        }
                    }
                    if let answered { return continuation.resume(with: answered) }
                    // Cancelled before the waiter was in place: the handler below found nobody to wake.
                    if Task.isCancelled { abandonWaiter() }
                }
            } onCancel: {
                abandonWaiter()
            }
        }
    }

    /// Wakes the waiter, if any, with CancellationError.
    private func abandonWaiter() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Value, Error>? in
            guard case .waiting(let waiter?) = state else { return nil }
            state = .waiting(nil)
            return waiter
        }
        waiter?.resume(throwing: CancellationError())
    }
}

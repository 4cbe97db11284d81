#if canImport(Glibc)
import Glibc
#endif
import KafkaLog
import KafkaWire
import NIOConcurrencyHelpers
import NIOCore

/// A fetch response whose records stay in the segment files: the generated codec writes every field
/// around them, and each partition's records go out as a `FileRegion` (sendfile), never copied
/// through user space.
public struct FetchResponseParts: Sendable {
    let version: Int16
    /// The response with every partition's records left nil.
    let response: FetchResponse
    /// Per topic, per partition: the file range to send, if any.
    let slices: [[LogReadSlice?]]

    var byteCount: Int { slices.joined().reduce(0) { $0 + ($1?.length ?? 0) } }

    /// What a throttled fetch is answered with: no partitions, the throttle time (Kafka's).
    func throttled(_ throttleTimeMs: Int32) -> FetchResponseParts {
        FetchResponseParts(version: version, response: FetchResponse(throttleTimeMs: throttleTimeMs, errorCode: 0, sessionId: 0, responses: []),
                           slices: [])
    }

    func frame(after head: ByteBuffer) throws(InvalidRequest) -> ResponseFrame {
        let flexible = version >= 12
        var parts: [IOData] = []
        var handles: [NIOFileHandle] = []
        var current = head
        current.writeInteger(response.throttleTimeMs)
        if version >= 7 {
            current.writeInteger(response.errorCode)
            current.writeInteger(response.sessionId)
        }
        writeCount(response.responses.count, &current, flexible)
        for (t, topic) in response.responses.enumerated() {
            if version >= 13 { current.writeKafkaUUID(topic.topicId) } else { current.writeKafkaString(topic.topic, compact: flexible) }
            writeCount(topic.partitions.count, &current, flexible)
            for (p, partition) in topic.partitions.enumerated() {
                // The partition's fields up to its records: its encoding minus the null records marker
                // (and the empty tagged section, in flexible versions), which the codec writes last.
                var fields = ByteBuffer()
                partition.write(into: &fields, version: version)
                fields.moveWriterIndex(to: fields.writerIndex - (flexible ? 2 : 4))
                current.writeBuffer(&fields)
                if let slice = slices[t][p], slice.length > 0, let handle = Self.duplicate(slice.file.descriptor) {
                    if flexible { current.writeUnsignedVarint(UInt32(slice.length + 1)) } else { current.writeInteger(Int32(slice.length)) }
                    parts.append(.byteBuffer(current))
                    current = ByteBuffer()
                    parts.append(.fileRegion(FileRegion(fileHandle: handle, readerIndex: slice.position, endIndex: slice.position + slice.length)))
                    handles.append(handle)
                } else {
                    if flexible { current.writeUnsignedVarint(1) } else { current.writeInteger(Int32(0)) }
                }
                if flexible { current.writeInteger(UInt8(0)) }
            }
            if flexible { current.writeInteger(UInt8(0)) }
        }
        if flexible { current.writeInteger(UInt8(0)) }
        parts.append(.byteBuffer(current))
        let total = parts.reduce(0) { $0 + $1.readableBytes } - 4
        guard let size = Int32(exactly: total) else {
            for handle in handles { try? handle.close() }
            throw InvalidRequest(description: "a fetch response of \(total) bytes does not fit a frame")
        }
        if case .byteBuffer(var first) = parts[0] {
            first.setInteger(size, at: first.readerIndex)
            parts[0] = .byteBuffer(first)
        }
        return ResponseFrame(parts: parts, fileHandles: handles)
    }

    private func writeCount(_ count: Int, _ buffer: inout ByteBuffer, _ flexible: Bool) {
        if flexible { buffer.writeUnsignedVarint(UInt32(count + 1)) } else { buffer.writeInteger(Int32(count)) }
    }

    /// A descriptor of its own for the send, so that a segment deleted meanwhile (retention, topic
    /// deletion) stays readable until the response is out.
    static func duplicate(_ descriptor: Int32) -> NIOFileHandle? {
        let copy = dup(descriptor)
        guard copy >= 0 else { return nil }
        return NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: copy)
    }
}

extension RequestDispatcher {
    /// Fetch: reads every requested partition; when less than min_bytes is there and max_wait_ms
    /// allows, waits for an append to one of them (or the deadline) and reads again.
    func fetch(_ request: FetchRequest, version: Int16, eventLoop: EventLoop, client: QuotaClient,
               context: RequestContext = RequestContext()) -> EventLoopFuture<BrokerResponse> {
        // Under a consumer_byte_rate quota one answer carries at most what the quota allows in its
        // window (Kafka's cap), so that a single fetch cannot earn a throttle longer than the window.
        var capped = request
        if broker.quotas.isEnforcing, let cap = broker.quotas.maxBytesInWindow(.consumerByteRate, for: client) {
            capped.maxBytes = min(request.maxBytes, Int32(clamping: cap))
        }
        let request = capped
        // Incremental fetch sessions are not kept: a session id we never handed out is unknown.
        if request.sessionId != 0 && request.sessionEpoch > 0 {
            return eventLoop.makeSucceededFuture(.message(FetchResponse(errorCode: ErrorCode.fetchSessionIdNotFound.rawValue, sessionId: 0)))
        }
        // READ on each topic, decided once for every read of a long poll.
        let denied = Set(request.topics.compactMap { wanted -> String? in
            let name = version >= 13 ? broker.topics.topic(id: wanted.topicId)?.name : wanted.topic
            return name.flatMap { permits(context, .read, .topic, $0) ? nil : $0 }
        })
        let first = readFetch(request, version: version, denied: denied)
        let waitMs = Int64(request.maxWaitMs)
        guard waitMs > 0, first.byteCount < Int(request.minBytes), !first.hasErrors else {
            return eventLoop.makeSucceededFuture(.fetch(first.parts))
        }
        let promise = eventLoop.makePromise(of: BrokerResponse.self)
        let done = NIOLockedValueBox(false)
        let deadline = NIODeadline.now() + .milliseconds(waitMs)
        /// Answers once, with a read already made or a fresh one.
        @Sendable func finish(_ read: FetchRead? = nil) {
            guard done.withLockedValue({ let was = $0; $0 = true; return !was }) else { return }
            promise.succeed(.fetch((read ?? self.readFetch(request, version: version, denied: denied)).parts))
        }
        let tokens = NIOLockedValueBox<[(PartitionLog, UInt64)]>([])
        /// Waits for `log` to grow beyond `end`, where it ended when last read: an append between that
        /// read and the listening still wakes the wait. When what it then holds is still too little,
        /// waits again.
        @Sendable func arm(_ log: PartitionLog, beyond end: Int64) {
            let token = log.onAppend(beyond: end) {
                eventLoop.execute {
                    guard !done.withLockedValue({ $0 }) else { return }
                    let read = self.readFetch(request, version: version, denied: denied)
                    guard read.byteCount < Int(request.minBytes) else { return finish(read) }
                    if let end = read.logEnds.first(where: { $0.log === log })?.end { arm(log, beyond: end) }
                }
            }
            if let token { tokens.withLockedValue { $0.append((log, token)) } }
        }
        for (log, end) in first.logEnds { arm(log, beyond: end) }
        let timeout = eventLoop.scheduleTask(deadline: deadline) { finish() }
        promise.futureResult.whenComplete { _ in
            timeout.cancel()
            for (log, token) in tokens.withLockedValue({ $0 }) { log.removeAppendListener(token) }
        }
        return promise.futureResult
    }

    struct FetchRead {
        var parts: FetchResponseParts
        var hasErrors: Bool
        /// Each log read and where it ended just before the read.
        var logEnds: [(log: PartitionLog, end: Int64)]
        var byteCount: Int { parts.byteCount }
    }

    func readFetch(_ request: FetchRequest, version: Int16, denied: Set<String> = []) -> FetchRead {
        typealias PartitionData = FetchResponse.PartitionData
        // The broker's fetch.max.bytes bounds what any request may ask for (Kafka's rule).
        var remaining = min(Int(request.maxBytes), broker.config.fetchMaxBytes)
        var minOneBatch = true  // KIP-74: the first batch of the response goes out whole
        var hasErrors = false
        var logEnds: [(log: PartitionLog, end: Int64)] = []
        var slices: [[LogReadSlice?]] = []
        var topics: [FetchResponse.FetchableTopicResponse] = []
        for wanted in request.topics {
            let topic = version >= 13 ? broker.topics.topic(id: wanted.topicId) : broker.topics.topic(wanted.topic)
            let readable = (topic?.name ?? (version >= 13 ? nil : wanted.topic)).map { !denied.contains($0) } ?? true
            var topicSlices: [LogReadSlice?] = []
            let partitions = wanted.partitions.map { p -> PartitionData in
                var sent = false
                func failure(_ code: ErrorCode) -> PartitionData {
                    hasErrors = true
                    topicSlices.append(nil)
                    return PartitionData(partitionIndex: p.partition, errorCode: code.rawValue, highWatermark: -1,
                                         lastStableOffset: -1, logStartOffset: -1, abortedTransactions: nil)
                }
                guard readable else { return failure(.topicAuthorizationFailed) }
                guard let topic else { return failure(version >= 13 ? .unknownTopicId : .unknownTopicOrPartition) }
                guard let log = broker.topics.log(topic.name, p.partition) else { return failure(.unknownTopicOrPartition) }
                if p.currentLeaderEpoch > 0 { return failure(.unknownLeaderEpoch) }
                if p.currentLeaderEpoch < -1 { return failure(.fencedLeaderEpoch) }
                let highWatermark = log.logEndOffset
                logEnds.append((log, highWatermark))
                let logStart = log.logStartOffset
                let limit = max(min(Int(p.partitionMaxBytes), remaining), 0)
                // read_committed (isolation level 1) stops at the last stable offset.
                let lastStable = min(log.lastStableOffset, highWatermark)
                let committedOnly = request.isolationLevel == 1
                do {
                    switch try log.read(from: p.fetchOffset, maxBytes: limit, minOneBatch: minOneBatch, upTo: committedOnly ? lastStable : nil) {
                    case .offsetOutOfRange:
                        return failure(.offsetOutOfRange)
                    case .empty:
                        topicSlices.append(nil)
                    case .slice(let slice):
                        sent = true
                        topicSlices.append(slice)
                        remaining -= slice.length
                        minOneBatch = false
                    }
                } catch {
                    logger.error("reading \(topic.name)-\(p.partition) failed: \(error)")
                    return failure(.kafkaStorageError)
                }
                // The consumer drops these transactions' records from what it was sent.
                let aborted = committedOnly && sent
                    ? log.abortedTransactions(from: p.fetchOffset, upTo: lastStable).map {
                        FetchResponse.AbortedTransaction(producerId: $0.producerId, firstOffset: $0.firstOffset)
                    } : []
                return PartitionData(partitionIndex: p.partition, errorCode: 0, highWatermark: highWatermark,
                                     lastStableOffset: lastStable, logStartOffset: logStart,
                                     abortedTransactions: committedOnly ? aborted : nil, preferredReadReplica: -1)
            }
            slices.append(topicSlices)
            topics.append(.init(topic: wanted.topic, topicId: wanted.topicId, partitions: partitions))
        }
        let response = FetchResponse(throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: topics)
        return FetchRead(parts: FetchResponseParts(version: version, response: response, slices: slices), hasErrors: hasErrors, logEnds: logEnds)
    }
}

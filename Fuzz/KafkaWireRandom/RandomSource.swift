import KafkaWire
import NIOCore

/// Deterministic random values for the codec's property tests and the broker fuzzer (SplitMix64, so
/// a failure replays from its seed). The generated `random(version:using:)` of every message asks
/// it for each field.
///
/// A fuzzer gives it a `Vocabulary`: strings then come mostly from a small pool (so that requests
/// name the same topics, groups and config keys and build on each other's state), byte fields are
/// often record batches, and arrays now and then repeat one element many times.
public struct RandomSource: RandomNumberGenerator {
    private var state: UInt64
    /// How deep struct nesting may go before arrays come out empty, to keep messages small.
    public var depth = 0
    public var vocabulary: Vocabulary?

    /// What a stateful fuzzer wants the values to be drawn from.
    public struct Vocabulary {
        /// Strings handed out three times in four.
        public var strings: [String]
        /// Makes the value of a bytes field (record batches, mostly).
        public var bytes: (inout RandomSource) -> ByteBuffer

        public init(strings: [String], bytes: @escaping (inout RandomSource) -> ByteBuffer) {
            self.strings = strings
            self.bytes = bytes
        }
    }

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value below `bound` (0 when `bound` is 0).
    public mutating func below(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(next() % UInt64(bound)) }

    public mutating func bool() -> Bool { next() & 1 == 1 }

    /// One time in four a nullable value comes out null.
    public mutating func null() -> Bool { next() % 4 == 0 }

    /// Boundaries (min, max and their neighbours, 0, ±1), small values and anything in between.
    public mutating func integer<T: FixedWidthInteger>(_ type: T.Type) -> T {
        switch next() % 4 {
        case 0:
            let boundaries: [T] = [T.min, T.min &+ 1, T.max &- 1, T.max, 0, 1, T(truncatingIfNeeded: -1)]
            return boundaries[below(boundaries.count)]
        case 1: return T(truncatingIfNeeded: vocabulary == nil ? next() % 100 : next() % 4)
        default: return T(truncatingIfNeeded: next())
        }
    }

    public mutating func float64() -> Double { Double(Int64(truncatingIfNeeded: next()) % 1_000_000) / 7.0 }

    public mutating func uuid() -> KafkaUUID { KafkaUUID(high: next(), low: next()) }

    public mutating func string() -> String {
        if let strings = vocabulary?.strings, !strings.isEmpty, next() % 4 != 0 { return strings[below(strings.count)] }
        let alphabet = Array("abcxyz-_.ABC019 éß日本")
        return String((0..<Int(next() % 12)).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] })
    }

    public mutating func bytes() -> ByteBuffer {
        if let make = vocabulary?.bytes, next() % 2 == 0 { return make(&self) }
        var buffer = ByteBuffer()
        for _ in 0..<Int(next() % 20) { buffer.writeInteger(UInt8(truncatingIfNeeded: next())) }
        return buffer
    }

    public mutating func array<T>(_ element: (inout RandomSource) -> T) -> [T] {
        guard depth < 4 else { return [] }
        depth += 1
        defer { depth -= 1 }
        if vocabulary != nil, next() % 16 == 0 {
            // One element named many times: what de-duplication and linear-time checks are for.
            // Many only at the outermost level, so that nested repeats do not multiply into gigabytes.
            let one = element(&self)
            return Array(repeating: one, count: 2 + below(depth == 1 ? 200 : 4))
        }
        return (0..<Int(next() % 4)).map { _ in element(&self) }
    }

    /// Unknown tags above every known one, in the ascending order they are written in.
    public mutating func unknownTaggedFields(above knownMax: Int) -> [TaggedField] {
        guard next() % 3 == 0 else { return [] }
        var tag = UInt32(knownMax + 1) + UInt32(next() % 5)
        return (0..<Int(1 + next() % 2)).map { _ in
            defer { tag += 1 + UInt32(next() % 100) }
            return TaggedField(tag: tag, data: bytes())
        }
    }
}

/// A message the generated tests can fill with random values valid at a version.
public protocol RandomizableMessage: KafkaMessage {
    static func random(version: Int16, using rng: inout RandomSource) -> Self
}

/// Every message of the specs, as the registry lists them: each has a generated randomizer.
public let allRandomizableMessages: [any RandomizableMessage.Type] = KafkaMessageRegistry.all.compactMap { $0 as? any RandomizableMessage.Type }

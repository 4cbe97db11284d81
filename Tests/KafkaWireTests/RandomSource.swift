import KafkaWire
import NIOCore

/// Deterministic random values for the property tests (SplitMix64, so a failure replays from its seed).
struct RandomSource: RandomNumberGenerator {
    private var state: UInt64
    /// How deep struct nesting may go before arrays come out empty, to keep messages small.
    var depth = 0

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bool() -> Bool { next() & 1 == 1 }

    /// One time in four a nullable value comes out null.
    mutating func null() -> Bool { next() % 4 == 0 }

    /// Small values, boundaries and anything in between.
    mutating func integer<T: FixedWidthInteger>(_ type: T.Type) -> T {
        switch next() % 4 {
        case 0: return [T.min, T.max, 0, T(truncatingIfNeeded: -1)][Int(next() % 4)]
        case 1: return T(truncatingIfNeeded: next() % 100)
        default: return T(truncatingIfNeeded: next())
        }
    }

    mutating func float64() -> Double { Double(Int64(truncatingIfNeeded: next()) % 1_000_000) / 7.0 }

    mutating func uuid() -> KafkaUUID { KafkaUUID(high: next(), low: next()) }

    mutating func string() -> String {
        let alphabet = Array("abcxyz-_.ABC019 éß日本")
        return String((0..<Int(next() % 12)).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] })
    }

    mutating func bytes() -> ByteBuffer {
        var buffer = ByteBuffer()
        for _ in 0..<Int(next() % 20) { buffer.writeInteger(UInt8(truncatingIfNeeded: next())) }
        return buffer
    }

    mutating func array<T>(_ element: (inout RandomSource) -> T) -> [T] {
        guard depth < 4 else { return [] }
        depth += 1
        defer { depth -= 1 }
        return (0..<Int(next() % 4)).map { _ in element(&self) }
    }

    /// Unknown tags above every known one, in the ascending order they are written in.
    mutating func unknownTaggedFields(above knownMax: Int) -> [TaggedField] {
        guard next() % 3 == 0 else { return [] }
        var tag = UInt32(knownMax + 1) + UInt32(next() % 5)
        return (0..<Int(1 + next() % 2)).map { _ in
            defer { tag += 1 + UInt32(next() % 100) }
            return TaggedField(tag: tag, data: bytes())
        }
    }
}

/// A message the generated tests can fill with random values valid at a version.
protocol RandomizableMessage: KafkaMessage {
    static func random(version: Int16, using rng: inout RandomSource) -> Self
}

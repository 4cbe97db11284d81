/// Bounds on what a request may make the codec allocate. A count read from the wire is the sender's
/// claim: it is checked against these and against the bytes left before anything is sized by it.
public enum KafkaLimits {
    /// More elements than this in one array make a request malformed (Kafka's own bound).
    public static let maxArrayElements = 1_000_000
    /// More tagged fields than this in one tagged section make a request malformed.
    public static let maxTaggedFields = 10_000
    /// The most memory reserved up front for an array read from the wire; it grows past this only
    /// as elements actually decode.
    public static let reservationBytes = 1 << 16
}

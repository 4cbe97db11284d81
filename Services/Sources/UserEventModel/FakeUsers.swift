import Foundation

/// Realistic US places (city, state, a ZIP code of the city) to draw addresses from.
public enum Places {
    public static let all: [(city: String, state: String, zip: String)] = [
        ("New York", "NY", "10001"), ("Los Angeles", "CA", "90012"), ("Chicago", "IL", "60601"),
        ("Houston", "TX", "77002"), ("Phoenix", "AZ", "85004"), ("Philadelphia", "PA", "19103"),
        ("San Antonio", "TX", "78205"), ("San Diego", "CA", "92101"), ("Dallas", "TX", "75201"),
        ("San Jose", "CA", "95113"), ("Austin", "TX", "78701"), ("Jacksonville", "FL", "32202"),
        ("Columbus", "OH", "43215"), ("Charlotte", "NC", "28202"), ("Indianapolis", "IN", "46204"),
        ("San Francisco", "CA", "94103"), ("Seattle", "WA", "98101"), ("Denver", "CO", "80202"),
        ("Boston", "MA", "02108"), ("Nashville", "TN", "37203"), ("Portland", "OR", "97204"),
        ("Las Vegas", "NV", "89101"), ("Detroit", "MI", "48226"), ("Atlanta", "GA", "30303"),
        ("Miami", "FL", "33130"), ("Minneapolis", "MN", "55401"), ("New Orleans", "LA", "70112"),
        ("Salt Lake City", "UT", "84101"), ("Kansas City", "MO", "64105"), ("Pittsburgh", "PA", "15222"),
    ]

    /// e.g. 2026-11-21T10:15:30.123Z; a format style, not a formatter per user (those cost ICU set-up).
    static let iso8601 = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public static func randomUser<G: RandomNumberGenerator>(using rng: inout G, now: Date = Date()) -> UserEvent {
        let place = all[Int.random(in: 0..<all.count, using: &rng)]
        return UserEvent(id: UUID().uuidString.lowercased(),
                         address: .init(city: place.city, state: place.state, country: "US", postCode: place.zip),
                         datetime: iso8601.format(now))
    }
}

/// The original system's event, the contract between `user-events` (writes it as JSON keyed by id)
/// and `user-stats` (reads it).
public struct UserEvent: Codable, Sendable {
    public struct Address: Codable, Sendable {
        public var city: String
        public var state: String
        public var country: String
        public var postCode: String

        public init(city: String, state: String, country: String, postCode: String) {
            self.city = city
            self.state = state
            self.country = country
            self.postCode = postCode
        }
    }

    public var id: String
    public var address: Address
    public var datetime: String

    public init(id: String, address: Address, datetime: String) {
        self.id = id
        self.address = address
        self.datetime = datetime
    }
}

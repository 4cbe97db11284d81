import Foundation
import GRDB
import UserEventModel

/// Users in SQLite (one row per id, so a redelivered event is stored once) and the per-city report.
/// Writes and the services' reads go through GRDB's own queues (the async calls), never blocking a
/// thread of Swift's shared pool, which the HTTP server in the same process runs on.
package final class UserStore: Sendable {
    let database: any DatabaseWriter

    /// WAL mode, so `user-stats report` reads while `user-stats run` writes; both wait on a lock
    /// rather than fail.
    package init(path: String, readOnly: Bool = false) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        if readOnly {
            database = try DatabaseQueue(path: path, configuration: configuration)
            return
        }
        database = try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("users") { db in
            try db.create(table: "users") { table in
                table.primaryKey("id", .text)
                table.column("city", .text).notNull()
                table.column("state", .text).notNull()
                table.column("country", .text).notNull()
                table.column("postCode", .text).notNull()
                table.column("datetime", .text).notNull()
            }
            try db.create(table: "skipped") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("topic", .text).notNull()
                table.column("partition", .integer).notNull()
                table.column("offset", .integer).notNull()
                table.column("reason", .text).notNull()
                table.uniqueKey(["topic", "partition", "offset"])
            }
        }
        try migrator.migrate(database)
    }

    /// Inserts or updates a user; true when the id was new.
    @discardableResult
    package func upsert(_ user: UserEvent) async throws -> Bool {
        try await database.write { db in
            let existed = try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE id = ?", arguments: [user.id]) ?? false
            try db.execute(sql: """
                INSERT INTO users (id, city, state, country, postCode, datetime) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET city = excluded.city, state = excluded.state, country = excluded.country,
                    postCode = excluded.postCode, datetime = excluded.datetime
                """, arguments: [user.id, user.address.city, user.address.state, user.address.country, user.address.postCode, user.datetime])
            return !existed
        }
    }

    /// Records a malformed event once (by its position), so a redelivery does not count twice.
    package func skip(topic: String, partition: Int32, offset: Int64, reason: String) async throws {
        try await database.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO skipped (topic, partition, offset, reason) VALUES (?, ?, ?, ?)",
                           arguments: [topic, Int(partition), offset, reason])
        }
    }

    package func report() throws -> Report {
        try database.read(Self.report)
    }

    /// The report read on GRDB's own queue, for callers that must not block their thread.
    package func report() async throws -> Report {
        try await database.read(Self.report)
    }

    private static func report(_ db: Database) throws -> Report {
        let rows = try Row.fetchAll(db, sql: "SELECT city, state, COUNT(*) AS users FROM users GROUP BY city, state ORDER BY users DESC, city")
        let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") ?? 0
        let skipped = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM skipped") ?? 0
        return Report(totalUsers: total, skippedEvents: skipped,
                      cities: rows.map { Report.City(city: $0["city"], state: $0["state"], users: $0["users"]) })
    }
}

/// Users per city: the JSON of `user-stats report` and of `GET /report`.
package struct Report: Codable, Sendable, Equatable {
    package struct City: Codable, Sendable, Equatable {
        package var city: String
        package var state: String
        package var users: Int
    }

    package var totalUsers: Int
    package var skippedEvents: Int
    package var cities: [City]
}

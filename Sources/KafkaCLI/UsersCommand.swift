import ArgumentParser
import Foundation
import KafkaClient

/// `kfk users ...`: SCRAM users (kafka-configs.sh --entity-type users --add-config 'SCRAM-SHA-256=[...]').
struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "List, set and delete SCRAM users (their credentials, never their passwords).",
        subcommands: [List.self, Set.self, Delete.self])

    static func mechanism(_ text: String) throws -> KafkaSecurity.SaslMechanism {
        guard let mechanism = KafkaSecurity.SaslMechanism(rawValue: text.uppercased()), mechanism != .plain else {
            throw ValidationError("--mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512, not '\(text)'")
        }
        return mechanism
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The SCRAM credentials of every user, or of those named.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "User names (none: every user).") var users: [String] = []

        struct Row: Encodable { let user: String; let mechanism: String; let iterations: Int32 }

        func run() async throws {
            let found = try await connection.withAdmin { try await $0.describeUserScramCredentials(users: users.isEmpty ? nil : users) }
            let rows = found.sorted { $0.key < $1.key }.flatMap { user, infos in
                infos.map { Row(user: user, mechanism: $0.mechanism.rawValue, iterations: $0.iterations) }
            }
            try Output.emit(rows, asJSON: connection.json, header: ["USER", "MECHANISM", "ITERATIONS"],
                            rows: rows.map { [$0.user, $0.mechanism, String($0.iterations)] })
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or replace a user's SCRAM credential; the password is read from the first line of stdin.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The user name.") var user: String
        @Option(help: "SCRAM-SHA-256 or SCRAM-SHA-512.") var mechanism = "SCRAM-SHA-256"
        @Option(help: "Iterations, 4096 to 16384.") var iterations: Int32 = 4096

        func run() async throws {
            let scram = try Users.mechanism(mechanism)
            guard (4096...16384).contains(iterations) else { throw ValidationError("--iterations must be from 4096 to 16384") }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("give the password on stdin (e.g. printf '%s\\n' \"$PASSWORD\" | kfk users set \(user))")
            }
            try await connection.withAdmin { try await $0.upsertUserScramCredential(user: user, mechanism: scram, password: line, iterations: iterations) }
            if connection.json { try Output.json(["user": user, "mechanism": scram.rawValue]) } else { print("Set the \(scram.rawValue) credential of \(user)") }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a user's SCRAM credential for one mechanism.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The user name.") var user: String
        @Option(help: "SCRAM-SHA-256 or SCRAM-SHA-512.") var mechanism = "SCRAM-SHA-256"

        func run() async throws {
            let scram = try Users.mechanism(mechanism)
            try await connection.withAdmin { try await $0.deleteUserScramCredential(user: user, mechanism: scram) }
            if connection.json { try Output.json(["user": user, "mechanism": scram.rawValue]) } else { print("Deleted the \(scram.rawValue) credential of \(user)") }
        }
    }
}

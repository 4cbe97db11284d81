@testable import Consumers
import KafkaWire
import Testing

/// The classic group protocol's member side as a state machine, without a broker: each answer the
/// coordinator may give and what the member does next.
struct GroupMembershipTests {
    let start = ContinuousClock.now

    /// A member that joined generation 5 as "m-1" and owns `owned`.
    func joined(_ owned: Set<TopicPartition> = [], protocol name: String = "range") -> GroupMembership {
        var membership = GroupMembership(groupId: "g", now: start)
        _ = membership.joinAnswered(.noError, memberId: "m-1", generation: 5, leader: "m-0", protocolName: name, skipAssignment: false)
        _ = membership.syncAnswered(.noError, assigned: owned, owned: [], at: start)
        return membership
    }

    @Test func aNewMemberJoinsTwiceWithTheIdTheCoordinatorGives() {
        var membership = GroupMembership(groupId: "g", now: start)
        #expect(membership.nextStep(at: start, heartbeatInterval: .seconds(3)) == .join)
        // KIP-394: the first join only learns the member id; it is kept at once (a close() must leave with it).
        do {
            let answer = membership.joinAnswered(.memberIdRequired, memberId: "m-1", generation: -1, leader: "", protocolName: nil,
                                        skipAssignment: false)
            #expect(answer == .joinAgain)
        }
        #expect(membership.memberId == "m-1")
        do {
            let answer = membership.joinAnswered(.noError, memberId: "m-1", generation: 1, leader: "m-1", protocolName: "range",
                                        skipAssignment: false)
            #expect(answer == .sync(asLeader: true))
        }
        #expect(membership.generation == 1)
        #expect(membership.protocolName == .range)
        #expect(membership.needsJoin, "joined is not yet synced: commits wait for the assignment")
    }

    @Test func onlyTheLeaderAssignsAndNotWhenTheCoordinatorSaysToSkip() {
        var follower = GroupMembership(groupId: "g", now: start)
        do {
            let answer = follower.joinAnswered(.noError, memberId: "m-2", generation: 3, leader: "m-1", protocolName: "range",
                                      skipAssignment: false)
            #expect(answer == .sync(asLeader: false))
        }
        var skipping = GroupMembership(groupId: "g", now: start)
        do {
            let answer = skipping.joinAnswered(.noError, memberId: "m-1", generation: 3, leader: "m-1", protocolName: "range",
                                      skipAssignment: true)
            #expect(answer == .sync(asLeader: false))
        }
        var unknownAssignor = GroupMembership(groupId: "g", now: start)
        do {
            let answer = unknownAssignor.joinAnswered(.noError, memberId: "m-1", generation: 3, leader: "m-1", protocolName: "nobody-knows",
                                             skipAssignment: false)
            #expect(answer == .sync(asLeader: false))
        }
    }

    @Test func aRefusedJoinSaysWhatToDoBeforeTheNextTry() {
        var membership = joined()
        membership.rejoin()
        membership.joinStarted()
        do {
            let answer = membership.joinAnswered(.unknownMemberId, memberId: "", generation: -1, leader: "", protocolName: nil,
                                        skipAssignment: false)
            #expect(answer == .fail(.unknownMemberId, findCoordinator: false, fenced: false))
        }
        #expect(membership.memberId == "", "an id the coordinator does not know is dropped: the next join asks for a new one")
        #expect(membership.generation == -1)
        do {
            let answer = membership.joinAnswered(.notCoordinator, memberId: "", generation: -1, leader: "", protocolName: nil,
                                        skipAssignment: false)
            #expect(answer == .fail(.notCoordinator, findCoordinator: true, fenced: false))
        }
        do {
            let answer = membership.joinAnswered(.coordinatorNotAvailable, memberId: "", generation: -1, leader: "", protocolName: nil,
                                        skipAssignment: false)
            #expect(answer == .fail(.coordinatorNotAvailable, findCoordinator: true, fenced: false))
        }
        #expect(membership.needsJoin)
        do {
            let answer = membership.joinAnswered(.fencedInstanceId, memberId: "", generation: -1, leader: "", protocolName: nil,
                                        skipAssignment: false)
            #expect(answer == .fail(.fencedInstanceId, findCoordinator: false, fenced: true))
        }
        #expect(!membership.needsJoin, "a fenced member stops joining")
    }

    @Test func syncGivesWhatIsRevokedAndWhatIsAdded() {
        let a0 = TopicPartition("a", 0), a1 = TopicPartition("a", 1), a2 = TopicPartition("a", 2)
        var membership = joined([a0, a1])
        membership.rejoin()
        membership.joinStarted()
        _ = membership.joinAnswered(.noError, memberId: "m-1", generation: 6, leader: "m-0", protocolName: "range", skipAssignment: false)
        let later = start + .seconds(10)
        do {
            let answer = membership.syncAnswered(.noError, assigned: [a1, a2], owned: [a0, a1], at: later)
            #expect(answer
                == .assigned(revoked: [a0], added: [a2], followUp: false))
        }
        #expect(!membership.needsJoin)
        #expect(membership.nextStep(at: later, heartbeatInterval: .seconds(3)) == .none, "the sync counts as a heartbeat")
        #expect(membership.nextStep(at: later + .seconds(3), heartbeatInterval: .seconds(3)) == .heartbeat)
    }

    @Test func aCooperativeMemberThatGaveSomethingUpRejoinsForTheFollowUpRebalance() {
        let a0 = TopicPartition("a", 0), a1 = TopicPartition("a", 1)
        var membership = joined([a0, a1], protocol: "cooperative-sticky")
        membership.rejoin()
        membership.joinStarted()
        _ = membership.joinAnswered(.noError, memberId: "m-1", generation: 6, leader: "m-0", protocolName: "cooperative-sticky",
                                    skipAssignment: false)
        do {
            let answer = membership.syncAnswered(.noError, assigned: [a1], owned: [a0, a1], at: start)
            #expect(answer
                == .assigned(revoked: [a0], added: [], followUp: true))
        }
        #expect(membership.needsJoin)
        // Nothing given up: no follow-up.
        _ = membership.joinAnswered(.noError, memberId: "m-1", generation: 7, leader: "m-0", protocolName: "cooperative-sticky",
                                    skipAssignment: false)
        do {
            let answer = membership.syncAnswered(.noError, assigned: [a1], owned: [a1], at: start)
            #expect(answer == .assigned(revoked: [], added: [], followUp: false))
        }
        #expect(!membership.needsJoin)
    }

    @Test func aRejoinAskedForDuringAJoinIsNotLostWhenThatJoinEnds() {
        var membership = GroupMembership(groupId: "g", now: start)
        membership.joinStarted()
        // A new subscription while the JoinGroup waits: that join was built from the old one.
        membership.rejoin()
        _ = membership.joinAnswered(.noError, memberId: "m-1", generation: 1, leader: "m-1", protocolName: "range", skipAssignment: false)
        _ = membership.syncAnswered(.noError, assigned: [], owned: [], at: start)
        #expect(membership.needsJoin)
        // The next join covers it.
        membership.joinStarted()
        _ = membership.joinAnswered(.noError, memberId: "m-1", generation: 2, leader: "m-1", protocolName: "range", skipAssignment: false)
        _ = membership.syncAnswered(.noError, assigned: [], owned: [], at: start)
        #expect(!membership.needsJoin)
    }

    @Test func aRefusedSyncDropsAStaleMemberId() {
        var membership = joined()
        membership.rejoin()
        membership.joinStarted()
        _ = membership.joinAnswered(.noError, memberId: "m-1", generation: 6, leader: "m-0", protocolName: "range", skipAssignment: false)
        do {
            let answer = membership.syncAnswered(.rebalanceInProgress, assigned: [], owned: [], at: start)
            #expect(answer == .fail(.rebalanceInProgress, findCoordinator: false))
        }
        #expect(membership.memberId == "m-1")
        do {
            let answer = membership.syncAnswered(.illegalGeneration, assigned: [], owned: [], at: start)
            #expect(answer == .fail(.illegalGeneration, findCoordinator: false))
        }
        #expect(membership.memberId == "")
        #expect(membership.needsJoin)
    }

    @Test func heartbeatAnswers() {
        var membership = joined()
        let later = start + .seconds(4)
        do {
            let answer = membership.heartbeatAnswered(.noError, at: later)
            #expect(answer == .none)
        }
        #expect(membership.lastHeartbeat == later)
        #expect(!membership.needsJoin)
        do {
            let answer = membership.heartbeatAnswered(.rebalanceInProgress, at: later)
            #expect(answer == .rejoin)
        }
        #expect(membership.needsJoin)
        #expect(membership.memberId == "m-1", "a rebalance keeps the member and its partitions until the join")

        var expired = joined()
        do {
            let answer = expired.heartbeatAnswered(.unknownMemberId, at: later)
            #expect(answer == .lose)
        }
        #expect(expired.memberId == "" && expired.generation == -1 && expired.needsJoin)

        var moved = joined()
        do {
            let answer = moved.heartbeatAnswered(.notCoordinator, at: later)
            #expect(answer == .findCoordinator)
        }
        #expect(!moved.needsJoin)

        var fenced = joined()
        do {
            let answer = fenced.heartbeatAnswered(.fencedInstanceId, at: later)
            #expect(answer == .fenced)
        }
        #expect(!fenced.needsJoin)
    }

    @Test func commitErrors() {
        #expect(GroupMembership.commitAction(for: .notCoordinator) == .findCoordinator)
        #expect(GroupMembership.commitAction(for: .coordinatorNotAvailable) == .findCoordinator)
        #expect(GroupMembership.commitAction(for: .illegalGeneration) == .rejoin)
        #expect(GroupMembership.commitAction(for: .unknownMemberId) == .rejoin)
        #expect(GroupMembership.commitAction(for: .rebalanceInProgress) == .rejoin)
        #expect(GroupMembership.commitAction(for: .offsetMetadataTooLarge) == .none)
    }
}

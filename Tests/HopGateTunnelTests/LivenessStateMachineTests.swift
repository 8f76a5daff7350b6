import HopGateTunnel
import Testing

@Suite struct LivenessStateMachineTests {
    @Test func pingsOnTheIntervalAndMeasuresTheRoundTrip() {
        var liveness = LivenessStateMachine(keepaliveIntervalMilliseconds: 1000, idleTimeoutMilliseconds: 3000, now: 0)
        let early = liveness.tick(now: 500)
        #expect(early == nil)
        let ping = liveness.tick(now: 1000)
        #expect(ping == .sendPing(1))
        liveness.receivedPong(1, now: 1042)
        #expect(liveness.roundTripMilliseconds == 42)
        liveness.receivedPong(7, now: 1100)  // not ours: ignored
        #expect(liveness.roundTripMilliseconds == 42)
        let next = liveness.tick(now: 2000)
        #expect(next == .sendPing(2))
    }

    @Test func answersPingsWithPongs() {
        var liveness = LivenessStateMachine(keepaliveIntervalMilliseconds: 1000, idleTimeoutMilliseconds: 3000, now: 0)
        let answer = liveness.receivedPing(99, now: 10)
        #expect(answer == .sendPong(99))
    }

    @Test func aSilentPeerTimesOutOnceAndTrafficKeepsItAlive() {
        var liveness = LivenessStateMachine(keepaliveIntervalMilliseconds: 1000, idleTimeoutMilliseconds: 3000, now: 0)
        var actions: [LivenessStateMachine.Action] = []
        for now in stride(from: UInt64(0), through: 2900, by: 100) {
            if now == 2500 { liveness.received(now: now) }
            if let action = liveness.tick(now: now) { actions.append(action) }
        }
        #expect(!actions.contains(.idleTimeout))
        for now in stride(from: UInt64(3000), through: 6000, by: 100) {
            if let action = liveness.tick(now: now) { actions.append(action) }
        }
        #expect(actions.filter { $0 == .idleTimeout }.count == 1)
        #expect(!liveness.acceptsNewExchanges)
    }

    @Test func goAwayStopsNewExchangesBothWays() {
        var mine = LivenessStateMachine(keepaliveIntervalMilliseconds: 1000, idleTimeoutMilliseconds: 3000, now: 0)
        #expect(mine.acceptsNewExchanges)
        let first = mine.goAway()
        let second = mine.goAway()
        #expect(first && !second)
        #expect(!mine.acceptsNewExchanges)
        var theirs = LivenessStateMachine(keepaliveIntervalMilliseconds: 1000, idleTimeoutMilliseconds: 3000, now: 0)
        theirs.receivedGoAway(now: 5)
        #expect(theirs.peerIsGoingAway && !theirs.acceptsNewExchanges)
    }

    @Test func silenceWithExchangesWaitingIsProbedAndAnUnansweredProbeEndsTheSession() {
        var liveness = LivenessStateMachine(
            keepaliveIntervalMilliseconds: 15_000,
            idleTimeoutMilliseconds: 45_000,
            now: 0
        )
        let quiet = liveness.tick(now: 2_500, exchangesWaiting: false)
        #expect(quiet == nil, "no exchanges: silence is fine until the keepalive")
        let probe = liveness.tick(now: 2_600, exchangesWaiting: true)
        guard case .sendPing = probe else {
            Issue.record("expected a probing ping, got \(String(describing: probe))")
            return
        }
        let waiting = liveness.tick(now: 5_000, exchangesWaiting: true)
        #expect(waiting == nil)
        let dead = liveness.tick(now: 5_600, exchangesWaiting: true)
        #expect(dead == .unresponsive)
    }

    @Test func anAnsweredProbeKeepsTheSession() {
        var liveness = LivenessStateMachine(
            keepaliveIntervalMilliseconds: 15_000,
            idleTimeoutMilliseconds: 45_000,
            now: 0
        )
        guard case .sendPing(let value) = liveness.tick(now: 2_000, exchangesWaiting: true) else {
            Issue.record("expected a probing ping")
            return
        }
        liveness.receivedPong(value, now: 2_050)
        #expect(liveness.roundTripMilliseconds == 50)
        let later = liveness.tick(now: 3_000, exchangesWaiting: true)
        #expect(later == nil)
        #expect(!liveness.isProbing)
        let stillAlive = liveness.tick(now: 10_000, exchangesWaiting: false)
        #expect(stillAlive == nil)
    }
}

import NIOCore
import NIOPosix
import Testing

@testable import HopGateDTLS

/// How outgoing datagrams are packed and grouped into runs one segmented (GSO) write can carry.
@Suite struct DatagramQueueTests {
    private func datagram(_ size: Int, _ fill: UInt8) -> ByteBuffer { ByteBuffer(repeating: fill, count: size) }

    private func queue(_ datagrams: [ByteBuffer]) -> [DatagramQueue.Run] {
        var queue = DatagramQueue()
        for datagram in datagrams { queue.append(datagram) }
        return queue.take()
    }

    /// What the kernel will make of a run: every datagram but the last of the segment size, the last no longer.
    private func expectValid(_ run: DatagramQueue.Run) {
        let sizes = run.datagrams.map(\.readableBytes)
        if let segmentSize = run.segmentSize {
            #expect(sizes.count >= 2)
            #expect(sizes.dropLast().allSatisfy { $0 == segmentSize })
            #expect(sizes.last! <= segmentSize)
            #expect(sizes.count <= DatagramQueue.largestRunCount)
            #expect(run.bytes.readableBytes <= DatagramQueue.largestRunBytes)
        } else {
            #expect(sizes.count == 1)
        }
    }

    @Test func equalDatagramsAndAShorterLastMakeOneRun() {
        let runs = queue([datagram(1200, 1), datagram(1200, 2), datagram(1200, 3), datagram(500, 4)])
        #expect(runs.count == 1)
        #expect(runs[0].segmentSize == 1200)
        #expect(runs[0].datagrams == [datagram(1200, 1), datagram(1200, 2), datagram(1200, 3), datagram(500, 4)])
    }

    @Test func aShorterDatagramEndsARunAndALargerOneStartsOne() {
        let runs = queue([datagram(100, 1), datagram(60, 2), datagram(60, 3), datagram(80, 4), datagram(80, 5)])
        #expect(runs.map(\.segmentSize) == [100, nil, 80])
        #expect(runs.map { $0.datagrams.map(\.readableBytes) } == [[100, 60], [60], [80, 80]])
    }

    @Test func aLoneDatagramHasNoSegmentSize() {
        let runs = queue([datagram(16421, 9)])
        #expect(runs == [DatagramQueue.Run(bytes: datagram(16421, 9), segmentSize: nil)])
    }

    @Test func runsStayWithinWhatOneWriteMayCarry() {
        // Three 16 KiB loopback datagrams fit one write, a fourth does not; 64 segments is the kernel's limit.
        let large = queue((0..<5).map { datagram(16421, UInt8($0)) })
        #expect(large.map { $0.datagrams.count } == [3, 2])
        let small = queue((0..<100).map { datagram(600, UInt8($0)) })
        #expect(small.map { $0.datagrams.count } == [64, 36])
        for run in large + small { expectValid(run) }
    }

    @Test func anyMixOfSizesComesBackWholeAndInOrder() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let sizes = (0..<Int.random(in: 1...200, using: &generator)).map { _ in
                [1200, 1200, 1200, 16421, 65, Int.random(in: 1...16421, using: &generator)].randomElement(
                    using: &generator
                )!
            }
            let datagrams = sizes.enumerated().map { datagram($0.element, UInt8(truncatingIfNeeded: $0.offset)) }
            var queue = DatagramQueue()
            for datagram in datagrams { queue.append(datagram) }
            let runs = queue.take()
            #expect(runs.flatMap(\.datagrams) == datagrams)
            for run in runs { expectValid(run) }
            #expect(queue.take().isEmpty, "taking empties the queue")
        }
    }

    /// Only where the kernel has UDP segmentation offload (Linux 4.18 on); elsewhere the feature is not used.
    @Test(.enabled(if: System.supportsUDPSegmentationOffload)) func theProbeFindsThatLoopbackTakesSegmentedWrites()
        throws
    {
        #expect(SegmentationOffloadProbe.works(toward: try SocketAddress(ipAddress: "127.0.0.1", port: 9)))
        #expect(!SegmentationOffloadProbe.works(toward: try SocketAddress(unixDomainSocketPath: "/tmp/none")))
    }
}

import NIOCore
import Testing

@testable import HopGateTunnel

/// The queue of bytes an exchange holds while it waits for credit: oldest first, across its compactions.
@Suite struct PendingBytesTests {
    @Test func buffersLeaveInOrderThroughEmptyingAndCompacting() {
        var queue = PendingBytes()
        #expect(queue.isEmpty && queue.first == nil)
        var next = 0
        var expected = 0
        // Runs of appends and removals long enough to pass the compaction threshold (64 sent) many times, and to
        // empty the queue between some runs.
        for run in 0..<20 {
            for _ in 0..<(50 + run * 7) {
                queue.append(ByteBuffer(string: "\(next)"))
                next += 1
            }
            let removals = run % 3 == 0 ? next - expected : (50 + run * 7) / 2
            for _ in 0..<removals {
                #expect(queue.first.map { String(buffer: $0) } == "\(expected)")
                queue.removeFirst()
                expected += 1
            }
        }
        while let first = queue.first {
            #expect(String(buffer: first) == "\(expected)")
            queue.removeFirst()
            expected += 1
        }
        #expect(expected == next)
        #expect(queue.isEmpty)
    }

    @Test func whatIsLeftOfTheFirstBufferStaysFirst() {
        var queue = PendingBytes()
        queue.append(ByteBuffer(string: "abcdef"))
        queue.append(ByteBuffer(string: "gh"))
        var first = queue.first!
        _ = first.readSlice(length: 4)
        queue.replaceFirst(with: first)
        #expect(queue.first.map { String(buffer: $0) } == "ef")
        queue.removeFirst()
        #expect(queue.first.map { String(buffer: $0) } == "gh")
    }

    /// A removed buffer is let go at once, even while the queue still holds others: the queue must not keep a sent
    /// slice, and with it the whole read it came from, until its next compaction.
    @Test func aRemovedBufferIsNoLongerHeld() {
        var read = ByteBufferAllocator().buffer(capacity: 4096)
        read.writeBytes([UInt8](repeating: 7, count: 4096))
        var queue = PendingBytes()
        queue.append(read.getSlice(at: 0, length: 100)!)
        queue.append(ByteBuffer(string: "still waiting"))
        queue.removeFirst()
        #expect(!queue.isEmpty)
        // Writing to a buffer whose storage something else still holds copies it first (copy on write): the bytes
        // stay where they were only when `read` is their one owner.
        let before = read.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        read.setInteger(UInt8(1), at: 0)
        let after = read.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(before == after)
    }

    /// A waiting slice of a much larger buffer is copied into one of its own size, once; a buffer that holds
    /// about what it carries is left as it is.
    @Test func waitingSlicesOfLargeBuffersAreCompacted() {
        var decoderBuffer = ByteBufferAllocator().buffer(capacity: 96 * 1024)
        decoderBuffer.writeBytes((0..<(96 * 1024)).map { UInt8(truncatingIfNeeded: $0) })
        let expected = ByteBuffer(bytes: (1000..<(1000 + 16 * 1024)).map { UInt8(truncatingIfNeeded: $0) })
        var small = ByteBufferAllocator().buffer(capacity: 4096)
        small.writeBytes([UInt8](repeating: 3, count: 1000))
        var queue = PendingBytes()
        queue.append(decoderBuffer.getSlice(at: 1000, length: 16 * 1024)!)
        queue.append(small)
        queue.compactWaiting()

        let first = queue.first!
        #expect(first == expected)
        #expect(first.storageCapacity < 2 * first.readableBytes)
        queue.removeFirst()
        #expect(queue.first!.storageCapacity == small.storageCapacity)
        // The large buffer is no longer held by the queue: writing to it does not copy it.
        let before = decoderBuffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        decoderBuffer.setInteger(UInt8(1), at: 0)
        #expect(decoderBuffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == before)
    }
}

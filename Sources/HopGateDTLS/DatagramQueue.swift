import NIOCore

/// Encrypted datagrams waiting to be written, packed into a few large buffers rather than one allocation each, and
/// grouped into runs that one write with UDP segmentation offload (GSO) can carry: datagrams of one size, the last
/// of a run possibly shorter, as the kernel cuts them.
struct DatagramQueue {
    /// Datagrams back to back: one if `segmentSize` is nil, else cut every `segmentSize` bytes.
    struct Run: Equatable {
        var bytes: ByteBuffer
        var segmentSize: Int?

        /// The run's datagrams, one buffer each (slices, not copies).
        var datagrams: [ByteBuffer] {
            guard let segmentSize else { return [bytes] }
            var rest = bytes
            var datagrams: [ByteBuffer] = []
            while rest.readableBytes > 0 {
                datagrams.append(rest.readSlice(length: min(segmentSize, rest.readableBytes))!)
            }
            return datagrams
        }
    }

    /// Each buffer holds this much: a few 16 KiB loopback datagrams, or dozens of 1200-byte ones.
    static let chunkCapacity = 64 * 1024
    /// What one offloaded write may carry in all: an IPv4 packet's limit less the IP and UDP headers.
    static let largestRunBytes = 65_535 - 20 - 8
    /// Segments per offloaded write: the kernel's UDP_MAX_SEGMENTS.
    static let largestRunCount = 64

    private var runs: [Run] = []
    /// The buffer datagrams are written into now. Its runs are cut from it only once nothing more is written to
    /// it: a slice taken earlier would make the next write copy the whole buffer.
    private var chunk: ByteBuffer?
    private var chunkRuns: [(start: Int, length: Int, segmentSize: Int?)] = []
    /// The last run in `chunk`, while more datagrams of its size may join it.
    private var open: (start: Int, count: Int, segmentSize: Int)?
    private let allocator = ByteBufferAllocator()

    /// Writes one datagram of at most `capacity` bytes straight into the queue: `body` fills the space it is given
    /// and returns how much it used (0 for nothing).
    mutating func write(upTo capacity: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int) {
        if chunk == nil || chunk!.writableBytes < capacity {
            closeChunk()
            chunk = allocator.buffer(capacity: max(Self.chunkCapacity, capacity))
        }
        let start = chunk!.writerIndex
        let used = chunk!.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { body($0) }
        guard used > 0 else { return }
        add(at: start, length: used)
    }

    /// Copies a datagram made elsewhere into the queue.
    mutating func append(_ datagram: ByteBuffer) {
        write(upTo: datagram.readableBytes) { space in
            datagram.withUnsafeReadableBytes { space.copyMemory(from: $0) }
            return datagram.readableBytes
        }
    }

    /// Everything queued, in order; the queue is empty afterwards.
    mutating func take() -> [Run] {
        closeChunk()
        defer { runs.removeAll(keepingCapacity: true) }
        return runs
    }

    private mutating func add(at start: Int, length: Int) {
        if var run = open, length <= run.segmentSize, run.count < Self.largestRunCount,
            run.count * run.segmentSize + length <= Self.largestRunBytes
        {
            run.count += 1
            if length < run.segmentSize {
                // A shorter datagram can only end a run: the kernel cuts every segment but the last at full size.
                open = nil
                chunkRuns.append((run.start, (run.count - 1) * run.segmentSize + length, run.segmentSize))
            } else {
                open = run
            }
            return
        }
        endOpenRun()
        open = (start, 1, length)
    }

    private mutating func endOpenRun() {
        guard let run = open else { return }
        open = nil
        chunkRuns.append((run.start, run.count * run.segmentSize, run.count > 1 ? run.segmentSize : nil))
    }

    private mutating func closeChunk() {
        endOpenRun()
        if let chunk {
            for run in chunkRuns {
                runs.append(
                    Run(bytes: chunk.getSlice(at: run.start, length: run.length)!, segmentSize: run.segmentSize)
                )
            }
        }
        chunkRuns.removeAll(keepingCapacity: true)
        chunk = nil
    }
}

extension ChannelHandlerContext {
    /// Writes a run of datagrams to `peer`: as one write the kernel cuts (UDP GSO) when `offloading`, else a write
    /// each. `promise` completes with the last.
    func write(_ run: DatagramQueue.Run, to peer: SocketAddress, offloading: Bool, promise: EventLoopPromise<Void>?) {
        if offloading, let segmentSize = run.segmentSize {
            let metadata = AddressedEnvelope<ByteBuffer>.Metadata(
                ecnState: .transportNotCapable,
                packetInfo: nil,
                segmentSize: segmentSize
            )
            write(NIOAny(AddressedEnvelope(remoteAddress: peer, data: run.bytes, metadata: metadata)), promise: promise)
            return
        }
        let datagrams = run.datagrams
        for (index, datagram) in datagrams.enumerated() {
            write(
                NIOAny(AddressedEnvelope(remoteAddress: peer, data: datagram)),
                promise: index == datagrams.count - 1 ? promise : nil
            )
        }
    }
}

import NIOCore

/// An exchange's bytes that wait for credit, oldest first: an array and the index of its first element.
///
/// Most exchanges never wait (a request's body and its answer fit the credit), so an empty queue allocates nothing.
/// The `CircularBuffer` this replaces made room for 16 buffers for every exchange, and its storage (optional
/// buffers, allocated and destroyed by unspecialized code) cost about 1,500 instructions a request on each side.
struct PendingBytes {
    private var buffers: [ByteBuffer] = []
    private var start = 0
    /// Buffers before this index have been through `compactWaiting`.
    private var compacted = 0
    private static let released = ByteBuffer()

    var isEmpty: Bool { start == buffers.count }

    /// The oldest buffer, or nil when the queue is empty.
    var first: ByteBuffer? { isEmpty ? nil : buffers[start] }

    mutating func append(_ bytes: ByteBuffer) {
        buffers.append(bytes)
    }

    /// Replaces the oldest buffer (with what is left of it once a part was sent).
    mutating func replaceFirst(with bytes: ByteBuffer) {
        precondition(!isEmpty, "replaceFirst on an empty queue")
        buffers[start] = bytes
    }

    /// Copies each buffer that waits here and holds a much larger allocation than its bytes into one of its own
    /// size, once. A slice keeps all of the buffer it was cut from: an HTTP/2 DATA frame's 16 KiB kept the frame
    /// decoder's buffer of about 90 KB it came from, and the frames waiting for credit during an upload held 15 MB
    /// (heaptrack). Only what waits is copied; bytes sent at once are copied into their message anyway.
    mutating func compactWaiting() {
        var index = max(compacted, start)
        while index < buffers.count {
            let bytes = buffers[index]
            if bytes.storageCapacity > 2 * bytes.readableBytes + Self.slack {
                var copy = Self.allocator.buffer(capacity: bytes.readableBytes)
                copy.writeImmutableBuffer(bytes)
                buffers[index] = copy
            }
            index += 1
        }
        compacted = index
    }

    /// What a buffer may hold beyond twice its bytes before `compactWaiting` copies it.
    static let slack = 4096
    private static let allocator = ByteBufferAllocator()

    mutating func removeFirst() {
        precondition(!isEmpty, "removeFirst on an empty queue")
        // The slot lets go of its buffer now, not when the array is next compacted: a sent slice kept the whole
        // read it came from (a local service's 256 KiB reads), and a queue that never quite emptied held up to 64
        // of them, the client's largest use of memory during a download (heaptrack).
        buffers[start] = Self.released
        start += 1
        if start == buffers.count {
            // Emptied: start over at the front, keeping the room for the next run of writes.
            buffers.removeAll(keepingCapacity: true)
            start = 0
            compacted = 0
        } else if start >= 64 && start * 2 >= buffers.count {
            // A long queue that is sent as fast as it grows: let go of the sent half's buffers now and then.
            buffers.removeFirst(start)
            compacted = max(compacted - start, 0)
            start = 0
        }
    }
}

import Glibc

/// Writes `text` with write(2) until every byte is out (a pipe may take a long line in pieces), unbuffered: stdout
/// may be a pipe, where print() would sit in a buffer.
public func writeAll(_ text: String, toDescriptor descriptor: Int32) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written <= 0 {
                if written < 0 && errno == EINTR { continue }
                break
            }
            offset += written
        }
    }
}

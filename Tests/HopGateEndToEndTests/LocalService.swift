import Foundation
import HopGateTestSupport

/// A local HTTP/1.1 service for the end-to-end tests, in Python's standard library: what a user's app behind
/// `hopgate connect` might be. Its endpoints:
/// - `GET /bytes?n=N[&delay=S]`: N deterministic bytes (byte i is i*7 mod 251), optionally spread over S seconds;
/// - `POST /sha256`: the SHA-256 of the request body (Content-Length or chunked);
/// - `GET /sse?n=N&gap=S`: N server-sent events, S seconds apart;
/// - `GET /chunked?n=N&gap=S`: N chunks of a chunked response, S seconds apart;
/// - `GET /hang`: never answers;
/// - `GET /headers`: the request headers as JSON;
/// - `GET /connections`: how many connections the service has accepted, as text;
/// - `GET /status?code=N`: an empty response with status N that says `Content-Length: 5` all the same;
/// - `HEAD` of any path: what `GET /bytes` would say, without the bytes;
/// - anything else: `NAME PATH` as text.
final class LocalService: Sendable {
    let port: Int
    let process: BackgroundProcess

    init(name: String) async throws {
        let directory = try makeTemporaryDirectory("hopgate-service")
        let script = directory + "/service.py"
        try Data(Self.source.utf8).write(to: URL(fileURLWithPath: script))
        port = try freeLoopbackPort()
        process = try BackgroundProcess(
            "/usr/bin/python3",
            [script, "\(port)", name],
            environment: ["PATH": "/usr/bin:/bin"],
            name: "local service \(name)"
        )
        try await process.waitForOutput(containing: "READY")
    }

    static let source = #"""
        import hashlib, json, sys, threading, time, urllib.parse
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        PATTERN = bytes((i * 7) % 251 for i in range(251 * 300))
        ACCEPTED = [0]
        ACCEPTED_LOCK = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                with ACCEPTED_LOCK:
                    ACCEPTED[0] += 1
                super().setup()

            def query(self):
                return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).items()}

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                q = self.query()
                if path == "/bytes":
                    n = int(q.get("n", "0")); delay = float(q.get("delay", "0"))
                    self.send_response(200)
                    self.send_header("Content-Length", str(n))
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    sent = 0; started = time.time()
                    while sent < n:
                        offset = sent % 251
                        piece = PATTERN[offset:offset + min(65536, n - sent)]
                        self.wfile.write(piece); sent += len(piece)
                        if delay > 0:
                            target = started + delay * sent / n
                            if target > time.time(): time.sleep(target - time.time())
                elif path in ("/sse", "/chunked"):
                    n = int(q.get("n", "3")); gap = float(q.get("gap", "0.3"))
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream" if path == "/sse" else "text/plain")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    for i in range(n):
                        data = (f"data: event {i} at {time.time():.3f}\n\n" if path == "/sse" else f"chunk {i}\n").encode()
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n"); self.wfile.flush()
                        time.sleep(gap)
                    self.wfile.write(b"0\r\n\r\n")
                elif path == "/hang":
                    time.sleep(3600)
                elif path == "/status":
                    self.send_response(int(q.get("code", "204")))
                    self.send_header("Content-Length", "5")
                    self.end_headers()
                elif path == "/broken":
                    # A response no HTTP parser may take: a length that is not a number.
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\nhello")
                    self.close_connection = True
                elif path == "/connections":
                    self.reply(200, f"{ACCEPTED[0]}".encode(), "text/plain")
                elif path == "/headers":
                    self.reply(200, json.dumps({k.lower(): v for k, v in self.headers.items()}).encode(), "application/json")
                else:
                    self.reply(200, f"{sys.argv[2]} {self.path}\n".encode(), "text/plain")

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("Content-Length", self.query().get("n", "0"))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def do_POST(self):
                digest = hashlib.sha256(); total = 0
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                            break
                        left = size
                        while left > 0:
                            piece = self.rfile.read(min(65536, left)); digest.update(piece); left -= len(piece); total += len(piece)
                        self.rfile.readline()
                else:
                    left = int(self.headers.get("Content-Length", "0"))
                    while left > 0:
                        piece = self.rfile.read(min(65536, left))
                        if not piece: break
                        digest.update(piece); left -= len(piece); total += len(piece)
                self.reply(200, f"{digest.hexdigest()} {total}\n".encode(), "text/plain")

            def reply(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        # Many requests may connect at once (the default backlog is 5).
        ThreadingHTTPServer.request_queue_size = 256
        server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
        server.daemon_threads = True
        print("READY", flush=True)
        server.serve_forever()
        """#

    /// The bytes `/bytes?n=N` sends, for checking a download.
    static func expectedBytes(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8((($0 % 251) * 7) % 251) }
    }
}

// C glue over usrsctp in its no-threads AF_CONN mode (SCTP over DTLS, RFC 8261). usrsctp is one global stack per
// process and not thread-safe in this mode: every function here must be called by one thread at a time (the Swift
// side holds one lock around all of them). Nothing here opens a socket or reads a clock.
#ifndef C_HOPGATE_SCTP_H
#define C_HOPGATE_SCTP_H

#include <stddef.h>
#include <stdint.h>

/// Receives each packet the stack wants sent to the peer, in order, during the call into the stack that made it
/// (input, send, receive, timers, close): `bytes` is valid only until the sink returns.
typedef void (*hg_sctp_packet_sink)(uint64_t id, const uint8_t *bytes, size_t length);

/// Starts the stack once per process, with the sink for every association's packets; later calls do nothing.
/// Returns 0 on success.
int hg_sctp_init(hg_sctp_packet_sink sink);

/// Advances every association's timers by `elapsed_ms` (retransmission, delayed SACK, shutdown).
void hg_sctp_handle_timers(uint32_t elapsed_ms);

typedef struct hg_sctp_settings {
    uint16_t streams;           // streams each way
    uint32_t path_mtu;          // SCTP packet payload size; packets are path_mtu + 12 bytes
    uint32_t buffer_bytes;      // SO_SNDBUF and SO_RCVBUF
} hg_sctp_settings;

/// Makes an association endpoint with this id (any number unique in the process), and starts connecting: both ends
/// connect (simultaneous open). Returns 0 on success, or an errno.
int hg_sctp_open(uint64_t id, const hg_sctp_settings *settings);

/// Feeds one packet received from the peer (a decrypted DTLS record).
void hg_sctp_input(uint64_t id, const uint8_t *packet, size_t length);

/// What send and receive return when they would block: distinct from every negative errno.
enum { HG_SCTP_WOULD_BLOCK = -100000 };

enum {
    HG_SCTP_CONNECTING = 0,
    HG_SCTP_CONNECTED = 1,
    HG_SCTP_CLOSED = 2,   // shut down or lost
};
int hg_sctp_state(uint64_t id);

/// The streams usable each way once connected: the smaller of what the two ends agreed in INIT/INIT-ACK (each end
/// offers at most what it was configured with). 0 before the association is up.
int hg_sctp_stream_count(uint64_t id);

/// DATA chunks not yet sent or not yet acknowledged by the peer (0 when nothing is in flight, or not connected).
int hg_sctp_outstanding(uint64_t id);

/// DATA chunks this process's stack has sent again (timer and fast retransmissions), since it started.
uint64_t hg_sctp_retransmitted_chunks(void);

/// Sends one whole message on a stream. Returns the bytes sent, HG_SCTP_WOULD_BLOCK when the send buffer has no room now
/// (try again after input), or another negative errno.
long hg_sctp_send(uint64_t id, uint16_t stream, const uint8_t *data, size_t length);

/// Turns Nagle's algorithm off (the default here) or on for the association: on, messages sent while data is in
/// flight wait to be bundled; the next send with it off outputs everything waiting, in as few packets as fit.
void hg_sctp_set_nodelay(uint64_t id, int on);

/// Reads the next piece of a message: returns its length (0..capacity), sets the stream and whether it ends the
/// message; HG_SCTP_WOULD_BLOCK when nothing is ready; another negative errno on failure.
long hg_sctp_receive(uint64_t id, uint8_t *buffer, size_t capacity, uint16_t *stream, int *end_of_message);

/// Forgets the association at once: nothing more is sent for it (not even its ABORT), and packets the stack emits
/// for it later are dropped. The peer learns from the tunnel (GOAWAY, DTLS close_notify) or its idle timeout.
void hg_sctp_close(uint64_t id);

#endif

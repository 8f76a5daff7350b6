#include "CHopGateSCTP.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <usrsctp.h>

// RFC 8260 I-DATA; usrsctp.h 0.9.5 has the option but no name for it.
#ifndef SCTP_INTERLEAVING_SUPPORTED
#define SCTP_INTERLEAVING_SUPPORTED 0x00001206
#endif

// The association's id, not a pointer, is what usrsctp holds as the AF_CONN address: a packet the stack emits after
// the association was closed finds no entry and is dropped, instead of touching freed memory.

typedef struct endpoint {
    uint64_t id;
    struct socket *socket;
    int state;
    struct endpoint *next;
} endpoint;

static endpoint *endpoints = NULL;  // a short list: one entry per live session

static endpoint *find(uint64_t id) {
    for (endpoint *e = endpoints; e != NULL; e = e->next)
        if (e->id == id) return e;
    return NULL;
}

static hg_sctp_packet_sink sink = NULL;

// usrsctp's buffer lives only for this call: the sink copies the packet once, straight into the buffer that goes on
// to DTLS. (Queueing a malloc'd copy here for Swift to copy again was two copies and two allocations a packet.)
static int output(void *address, void *buffer, size_t length, uint8_t tos, uint8_t set_df) {
    (void)tos;
    (void)set_df;
    uint64_t id = (uint64_t)(uintptr_t)address;
    if (find(id) == NULL) return 0;  // closed: drop
    sink(id, buffer, length);
    return 0;
}

int hg_sctp_init(hg_sctp_packet_sink packet_sink) {
    static int started = 0;
    if (started) return 0;
    sink = packet_sink;
    usrsctp_init_nothreads(0, output, NULL);
    // DTLS's AEAD already authenticates every byte, and both ends are HopGate: skip the software CRC32c
    // (about 0.9 us a packet a side, RECIPES).
    usrsctp_enable_crc32c_offload();
    // Let the queue hold a full window of chunks rather than 512 (RECIPES: about 580 KB otherwise).
    usrsctp_sysctl_set_sctp_max_chunks_on_queue(65536);
    // The tunnel detects dead peers with its own pings; SCTP heartbeats would only add packets.
    usrsctp_sysctl_set_sctp_heartbeat_interval_default(0);
    // Cap the retransmission backoff at 10 s instead of 60 s, so a lossy link recovers in seconds, and let a lost
    // packet be sent again after 200 ms rather than 1 s: at 5% loss every timeout otherwise idles the link for a
    // second (20 MiB through the 5% relay took 33 s with 1000 ms, 23 s with 200 ms, debug build). An earlier stall
    // blamed on RTO.min below 1000 ms came from timers driven by two clocks; with one monotonic clock the 20% loss
    // tests pass. RTO.initial and sctp_use_cwnd_based_maxburst stay at their defaults (RECIPES suggests changing
    // them; that stalled usrsctp 0.9.5 under 10-20% loss before the clock fix and has not been tried since).
    usrsctp_sysctl_set_sctp_rto_max_default(10000);
    usrsctp_sysctl_set_sctp_rto_min_default(200);
    usrsctp_sysctl_set_sctp_init_rto_max_default(10000);
    started = 1;
    return 0;
}

void hg_sctp_handle_timers(uint32_t elapsed_ms) { usrsctp_handle_timers(elapsed_ms); }

static int set_int(struct socket *socket, int level, int option, int value) {
    return usrsctp_setsockopt(socket, level, option, &value, sizeof(value));
}

int hg_sctp_open(uint64_t id, const hg_sctp_settings *settings) {
    if (find(id) != NULL) return EEXIST;
    endpoint *e = calloc(1, sizeof(endpoint));
    if (e == NULL) return ENOMEM;
    e->id = id;
    usrsctp_register_address((void *)(uintptr_t)id);
    e->socket = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
    if (e->socket == NULL) {
        int error = errno;
        usrsctp_deregister_address((void *)(uintptr_t)id);
        free(e);
        return error ? error : EIO;
    }
    usrsctp_set_non_blocking(e->socket, 1);
    set_int(e->socket, SOL_SOCKET, SO_SNDBUF, (int)settings->buffer_bytes);
    set_int(e->socket, SOL_SOCKET, SO_RCVBUF, (int)settings->buffer_bytes);
    set_int(e->socket, IPPROTO_SCTP, SCTP_NODELAY, 1);
    set_int(e->socket, IPPROTO_SCTP, SCTP_RECVRCVINFO, 1);
    // I-DATA (RFC 8260): a large message on one stream no longer holds up the others.
    set_int(e->socket, IPPROTO_SCTP, SCTP_FRAGMENT_INTERLEAVE, 2);
    struct sctp_assoc_value interleaving = {.assoc_id = SCTP_FUTURE_ASSOC, .assoc_value = 1};
    usrsctp_setsockopt(e->socket, IPPROTO_SCTP, SCTP_INTERLEAVING_SUPPORTED, &interleaving, sizeof(interleaving));
    // Never give up on the peer from inside SCTP: the tunnel's pings and idle timeout decide when a peer is dead.
    // With the defaults (5 path / 10 association retransmissions), usrsctp marked the only path failed under 20%
    // loss and, with no heartbeat to revive it, stopped sending for good.
    struct sctp_assocparams association;
    memset(&association, 0, sizeof(association));
    association.sasoc_assoc_id = SCTP_FUTURE_ASSOC;
    association.sasoc_asocmaxrxt = 1000;
    usrsctp_setsockopt(e->socket, IPPROTO_SCTP, SCTP_ASSOCINFO, &association, sizeof(association));
    struct sctp_initmsg init = {.sinit_num_ostreams = settings->streams,
                                .sinit_max_instreams = settings->streams,
                                .sinit_max_attempts = 30,
                                .sinit_max_init_timeo = 3000};
    usrsctp_setsockopt(e->socket, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof(init));
    struct sctp_paddrparams path;
    memset(&path, 0, sizeof(path));
    path.spp_assoc_id = SCTP_FUTURE_ASSOC;
    path.spp_pathmtu = settings->path_mtu;
    path.spp_flags = SPP_PMTUD_DISABLE | SPP_HB_DISABLE;
    path.spp_pathmaxrxt = 1000;
    usrsctp_setsockopt(e->socket, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &path, sizeof(path));
    // Acknowledge every fourth packet rather than every second: a SACK is a datagram, a DTLS seal and a wakeup
    // of the sender (100 MiB over loopback: about 220 -> 265 MB/s). Gaps are still reported at once, and the
    // delay stays well under RTO.min (200 ms), so a lone packet's SACK never races its retransmission.
    struct sctp_sack_info sack = {.sack_assoc_id = SCTP_FUTURE_ASSOC, .sack_delay = 50, .sack_freq = 4};
    usrsctp_setsockopt(e->socket, IPPROTO_SCTP, SCTP_DELAYED_SACK, &sack, sizeof(sack));
    struct sctp_event event = {.se_assoc_id = SCTP_ALL_ASSOC, .se_type = SCTP_ASSOC_CHANGE, .se_on = 1};
    usrsctp_setsockopt(e->socket, IPPROTO_SCTP, SCTP_EVENT, &event, sizeof(event));

    struct sockaddr_conn address;
    memset(&address, 0, sizeof(address));
    address.sconn_family = AF_CONN;
    address.sconn_port = htons(5000);  // RFC 8261 leaves ports to the application; both ends use the same
    address.sconn_addr = (void *)(uintptr_t)id;
    e->next = endpoints;
    endpoints = e;
    if (usrsctp_bind(e->socket, (struct sockaddr *)&address, sizeof(address)) != 0
        || (usrsctp_connect(e->socket, (struct sockaddr *)&address, sizeof(address)) != 0 && errno != EINPROGRESS)) {
        int error = errno;
        hg_sctp_close(id);
        return error ? error : EIO;
    }
    return 0;
}

void hg_sctp_input(uint64_t id, const uint8_t *bytes, size_t length) {
    if (find(id) == NULL) return;
    usrsctp_conninput((void *)(uintptr_t)id, bytes, length, 0);
}

int hg_sctp_state(uint64_t id) {
    endpoint *e = find(id);
    return e != NULL ? e->state : HG_SCTP_CLOSED;
}

uint64_t hg_sctp_retransmitted_chunks(void) {
    struct sctpstat stat;
    memset(&stat, 0, sizeof(stat));
    usrsctp_get_stat(&stat);
    return (uint64_t)stat.sctps_sendretransdata + (uint64_t)stat.sctps_sendfastretrans;
}

/// The association's SCTP_STATUS; 0 when connected and read, -1 otherwise.
static int read_status(uint64_t id, struct sctp_status *status) {
    endpoint *e = find(id);
    if (e == NULL || e->state != HG_SCTP_CONNECTED) return -1;
    memset(status, 0, sizeof(*status));
    socklen_t length = sizeof(*status);
    return usrsctp_getsockopt(e->socket, IPPROTO_SCTP, SCTP_STATUS, status, &length) == 0 ? 0 : -1;
}

int hg_sctp_outstanding(uint64_t id) {
    struct sctp_status status;
    if (read_status(id, &status) != 0) return 0;
    return (int)(status.sstat_unackdata + status.sstat_penddata);
}

int hg_sctp_stream_count(uint64_t id) {
    struct sctp_status status;
    if (read_status(id, &status) != 0) return 0;
    return status.sstat_instrms < status.sstat_outstrms ? status.sstat_instrms : status.sstat_outstrms;
}

long hg_sctp_send(uint64_t id, uint16_t stream, const uint8_t *data, size_t length) {
    endpoint *e = find(id);
    if (e == NULL || e->state == HG_SCTP_CLOSED) return -EPIPE;
    struct sctp_sndinfo info;
    memset(&info, 0, sizeof(info));
    info.snd_sid = stream;
    ssize_t sent = usrsctp_sendv(e->socket, data, length, NULL, 0, &info, sizeof(info), SCTP_SENDV_SNDINFO, 0);
    if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return HG_SCTP_WOULD_BLOCK;
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) e->state = HG_SCTP_CLOSED;
        return -(long)errno;
    }
    return (long)sent;
}

void hg_sctp_set_nodelay(uint64_t id, int on) {
    endpoint *e = find(id);
    if (e != NULL) set_int(e->socket, IPPROTO_SCTP, SCTP_NODELAY, on);
}

static void handle_notification(endpoint *e, const uint8_t *buffer, size_t length) {
    const union sctp_notification *notification = (const union sctp_notification *)buffer;
    if (length < sizeof(notification->sn_header)) return;
    if (notification->sn_header.sn_type != SCTP_ASSOC_CHANGE || length < sizeof(struct sctp_assoc_change)) return;
    switch (notification->sn_assoc_change.sac_state) {
    case SCTP_COMM_UP:
    // A restart notification also comes from a duplicated COOKIE-ECHO during the simultaneous open (seen under 20%
    // loss with duplication): treating it as the end stalled that side for good. A real peer restart after the
    // session carried data is caught by the tunnel (its exchanges stop, its pings time out).
    case SCTP_RESTART:
        e->state = HG_SCTP_CONNECTED;
        break;
    case SCTP_COMM_LOST:
    case SCTP_SHUTDOWN_COMP:
    case SCTP_CANT_STR_ASSOC:
        e->state = HG_SCTP_CLOSED;
        break;
    default:
        break;
    }
}

long hg_sctp_receive(uint64_t id, uint8_t *buffer, size_t capacity, uint16_t *stream, int *end_of_message) {
    endpoint *e = find(id);
    if (e == NULL) return -EPIPE;
    for (;;) {
        struct sctp_rcvinfo info;
        socklen_t info_length = sizeof(info);
        unsigned int info_type = 0;
        int flags = 0;
        memset(&info, 0, sizeof(info));
        ssize_t count = usrsctp_recvv(e->socket, buffer, capacity, NULL, NULL, &info, &info_length, &info_type, &flags);
        if (count < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return HG_SCTP_WOULD_BLOCK;
            if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) e->state = HG_SCTP_CLOSED;
            return -(long)errno;
        }
        if (count == 0 && !(flags & MSG_EOR)) {
            e->state = HG_SCTP_CLOSED;  // the peer shut down
            return -EPIPE;
        }
        if (flags & MSG_NOTIFICATION) {
            // Notifications are small and come whole; they never reach the caller.
            handle_notification(e, buffer, (size_t)count);
            continue;
        }
        *stream = info_type == SCTP_RECVV_RCVINFO ? info.rcv_sid : 0;
        *end_of_message = (flags & MSG_EOR) != 0;
        return (long)count;
    }
}

void hg_sctp_close(uint64_t id) {
    endpoint **link = &endpoints;
    while (*link != NULL && (*link)->id != id) link = &(*link)->next;
    endpoint *e = *link;
    if (e == NULL) return;
    // Unlinked first, so that what usrsctp emits while closing (its ABORT) finds no endpoint and is dropped.
    *link = e->next;
    struct linger linger = {.l_onoff = 1, .l_linger = 0};  // close with ABORT, at once
    usrsctp_setsockopt(e->socket, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    usrsctp_close(e->socket);
    free(e);
    usrsctp_deregister_address((void *)(uintptr_t)id);
}

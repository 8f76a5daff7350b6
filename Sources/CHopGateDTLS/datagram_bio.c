#include "CHopGateDTLS.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

// One queued outgoing datagram.
typedef struct {
    uint8_t *bytes;
    size_t length;
} datagram;

typedef struct {
    uint8_t *in;           // the datagram fed in, not yet read (NULL when none)
    size_t in_length;
    int in_lent;           // `in` is the caller's (hg_dgram_bio_lend), not ours to free
    datagram *out;         // datagrams written, in order
    size_t out_count;
    size_t out_capacity;
    uint8_t peer[64];      // the peer address, for cookies
    size_t peer_length;
    long mtu;
    uint8_t *dest;         // where the next datagram goes instead of `out` (NULL when none): the caller's buffer
    size_t dest_capacity;
    size_t dest_used;      // the length of the datagram written there, 0 until one is
} dgram_state;

static int dgram_write(BIO *bio, const char *bytes, int length) {
    dgram_state *state = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (length < 0) return -1;
    // One datagram into the destination, saving an allocation and a copy; any further one is queued as usual
    // (its boundary would otherwise be lost), after it in order.
    if (state->dest != NULL && state->dest_used == 0 && state->out_count == 0 && length > 0
        && (size_t)length <= state->dest_capacity) {
        memcpy(state->dest, bytes, (size_t)length);
        state->dest_used = (size_t)length;
        return length;
    }
    if (state->out_count == state->out_capacity) {
        size_t capacity = state->out_capacity ? state->out_capacity * 2 : 8;
        datagram *grown = realloc(state->out, capacity * sizeof(datagram));
        if (grown == NULL) return -1;
        state->out = grown;
        state->out_capacity = capacity;
    }
    uint8_t *copy = malloc(length > 0 ? (size_t)length : 1);
    if (copy == NULL) return -1;
    memcpy(copy, bytes, (size_t)length);
    state->out[state->out_count++] = (datagram){copy, (size_t)length};
    return length;
}

static int dgram_read(BIO *bio, char *buffer, int size) {
    dgram_state *state = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (state->in == NULL) {
        BIO_set_retry_read(bio);
        return -1;
    }
    // A datagram larger than the reader's buffer is truncated, as recvfrom would; DTLS then drops the record.
    size_t n = state->in_length < (size_t)size ? state->in_length : (size_t)size;
    memcpy(buffer, state->in, n);
    if (!state->in_lent) free(state->in);
    state->in = NULL;
    state->in_length = 0;
    state->in_lent = 0;
    return (int)n;
}

static long dgram_ctrl(BIO *bio, int command, long number, void *pointer) {
    dgram_state *state = BIO_get_data(bio);
    (void)pointer;
    switch (command) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return state->in != NULL ? (long)state->in_length : 0;
    case BIO_CTRL_WPENDING:
        return 0;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_MTU:
        return state->mtu;
    case BIO_CTRL_DGRAM_SET_MTU:
        state->mtu = number;
        return number;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
        return 0;  // the MTU this BIO is given is already the UDP payload size
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
    case BIO_CTRL_DGRAM_SET_CONNECTED:
    case BIO_CTRL_DGRAM_SET_PEER:
        return 1;
    case BIO_CTRL_DGRAM_MTU_EXCEEDED:
    case BIO_CTRL_DGRAM_GET_RECV_TIMER_EXP:
    case BIO_CTRL_DGRAM_GET_SEND_TIMER_EXP:
    case BIO_CTRL_DGRAM_GET_PEER:
        return 0;
    default:
        return 0;
    }
}

static int dgram_create(BIO *bio) {
    dgram_state *state = calloc(1, sizeof(dgram_state));
    if (state == NULL) return 0;
    BIO_set_data(bio, state);
    BIO_set_init(bio, 1);
    return 1;
}

static int dgram_destroy(BIO *bio) {
    dgram_state *state = BIO_get_data(bio);
    if (state == NULL) return 0;
    hg_dgram_bio_out_clear(bio);
    free(state->out);
    if (!state->in_lent) free(state->in);
    free(state);
    BIO_set_data(bio, NULL);
    return 1;
}

// Made once; a BIO_METHOD is immutable after setup and may be shared by threads.
static BIO_METHOD *shared_method = NULL;
static int shared_type = -1;
static CRYPTO_ONCE shared_method_once = CRYPTO_ONCE_STATIC_INIT;

static void make_shared_method(void) {
    int index = BIO_get_new_index();
    if (index == -1) return;
    shared_type = index | BIO_TYPE_SOURCE_SINK;
    shared_method = BIO_meth_new(shared_type, "hopgate datagram");
    if (shared_method == NULL) return;
    BIO_meth_set_write(shared_method, dgram_write);
    BIO_meth_set_read(shared_method, dgram_read);
    BIO_meth_set_ctrl(shared_method, dgram_ctrl);
    BIO_meth_set_create(shared_method, dgram_create);
    BIO_meth_set_destroy(shared_method, dgram_destroy);
}

BIO *hg_dgram_bio_new(long mtu) {
    if (!CRYPTO_THREAD_run_once(&shared_method_once, make_shared_method) || shared_method == NULL) return NULL;
    BIO *bio = BIO_new(shared_method);
    if (bio != NULL) ((dgram_state *)BIO_get_data(bio))->mtu = mtu;
    return bio;
}

void hg_dgram_bio_feed(BIO *bio, const uint8_t *bytes, size_t length) {
    dgram_state *state = BIO_get_data(bio);
    // An empty datagram carries no record: reading it as 0 bytes would look like EOF to OpenSSL and end the session.
    if (length == 0) return;
    if (!state->in_lent) free(state->in);
    state->in_lent = 0;
    state->in = malloc(length > 0 ? length : 1);
    if (state->in == NULL) {
        state->in_length = 0;
        return;
    }
    memcpy(state->in, bytes, length);
    state->in_length = length;
}

void hg_dgram_bio_lend(BIO *bio, const uint8_t *bytes, size_t length) {
    dgram_state *state = BIO_get_data(bio);
    if (!state->in_lent) free(state->in);
    state->in = NULL;
    state->in_length = 0;
    state->in_lent = 0;
    // As with feed: an empty datagram would read as EOF.
    if (length == 0 || bytes == NULL) return;
    state->in = (uint8_t *)bytes;
    state->in_length = length;
    state->in_lent = 1;
}

void hg_dgram_bio_take_back(BIO *bio) {
    dgram_state *state = BIO_get_data(bio);
    if (!state->in_lent) return;
    state->in = NULL;
    state->in_length = 0;
    state->in_lent = 0;
}

void hg_dgram_bio_set_peer(BIO *bio, const uint8_t *bytes, size_t length) {
    dgram_state *state = BIO_get_data(bio);
    state->peer_length = length < sizeof(state->peer) ? length : sizeof(state->peer);
    memcpy(state->peer, bytes, state->peer_length);
}

void hg_dgram_bio_set_destination(BIO *bio, uint8_t *dest, size_t capacity) {
    dgram_state *state = BIO_get_data(bio);
    state->dest = dest;
    state->dest_capacity = capacity;
    state->dest_used = 0;
}

size_t hg_dgram_bio_take_destination(BIO *bio) {
    dgram_state *state = BIO_get_data(bio);
    size_t used = state->dest_used;
    state->dest = NULL;
    state->dest_capacity = 0;
    state->dest_used = 0;
    return used;
}

size_t hg_dgram_bio_out_count(BIO *bio) { return ((dgram_state *)BIO_get_data(bio))->out_count; }

const uint8_t *hg_dgram_bio_out_datagram(BIO *bio, size_t index, size_t *length) {
    dgram_state *state = BIO_get_data(bio);
    *length = state->out[index].length;
    return state->out[index].bytes;
}

void hg_dgram_bio_out_clear(BIO *bio) {
    dgram_state *state = BIO_get_data(bio);
    for (size_t i = 0; i < state->out_count; i++) free(state->out[i].bytes);
    state->out_count = 0;
}

// MARK: - Cookies

struct hg_cookie_secrets {
    uint8_t current[32];
    uint8_t previous[32];
};

hg_cookie_secrets *hg_cookie_secrets_new(void) {
    hg_cookie_secrets *secrets = calloc(1, sizeof(hg_cookie_secrets));
    if (secrets != NULL && (!hg_cookie_secrets_rotate(secrets) || !hg_cookie_secrets_rotate(secrets))) {
        free(secrets);
        return NULL;
    }
    return secrets;
}

void hg_cookie_secrets_free(hg_cookie_secrets *secrets) {
    if (secrets != NULL) OPENSSL_cleanse(secrets, sizeof(*secrets));
    free(secrets);
}

int hg_cookie_secrets_rotate(hg_cookie_secrets *secrets) {
    memcpy(secrets->previous, secrets->current, 32);
    return RAND_bytes(secrets->current, 32) == 1;
}

static int cookie_for(SSL *ssl, const uint8_t *secret, uint8_t *out, unsigned int *out_length) {
    BIO *bio = SSL_get_rbio(ssl);
    dgram_state *state = bio != NULL && BIO_method_type(bio) == shared_type ? BIO_get_data(bio) : NULL;
    if (state == NULL) return 0;
    return HMAC(EVP_sha256(), secret, 32, state->peer, state->peer_length, out, out_length) != NULL;
}

static int generate_cookie(SSL *ssl, unsigned char *cookie, unsigned int *length) {
    hg_cookie_secrets *secrets = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0);
    return secrets != NULL && cookie_for(ssl, secrets->current, cookie, length);
}

static int verify_cookie(SSL *ssl, const unsigned char *cookie, unsigned int length) {
    hg_cookie_secrets *secrets = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0);
    uint8_t expected[EVP_MAX_MD_SIZE];
    unsigned int expected_length = 0;
    if (secrets == NULL) return 0;
    const uint8_t *keys[2] = {secrets->current, secrets->previous};
    for (int i = 0; i < 2; i++) {
        if (cookie_for(ssl, keys[i], expected, &expected_length) && expected_length == length
            && CRYPTO_memcmp(expected, cookie, length) == 0)
            return 1;
    }
    return 0;
}

void hg_ctx_use_cookies(SSL_CTX *ctx, hg_cookie_secrets *secrets) {
    SSL_CTX_set_ex_data(ctx, 0, secrets);
    SSL_CTX_set_options(ctx, SSL_OP_COOKIE_EXCHANGE);
    SSL_CTX_set_cookie_generate_cb(ctx, generate_cookie);
    SSL_CTX_set_cookie_verify_cb(ctx, verify_cookie);
}

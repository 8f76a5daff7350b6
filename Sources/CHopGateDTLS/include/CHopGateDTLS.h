// C glue that Swift cannot express against OpenSSL 3: function-like macros, a BIO that keeps datagrams apart,
// HMAC cookies for DTLSv1_listen, and certificate helpers. Nothing here keeps global state.
#ifndef C_HOPGATE_DTLS_H
#define C_HOPGATE_DTLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

// MARK: - Macros as functions

int hg_ctx_set_dtls12_only(SSL_CTX *ctx);
void hg_ctx_set_options(SSL_CTX *ctx);
/// Returns 1, or 0 when OpenSSL refuses the MTU (below its minimum).
int hg_ssl_set_link_mtu(SSL *ssl, long mtu);
int hg_ssl_change_mtu(SSL *ssl, long mtu);
int hg_ssl_set_server_name(SSL *ssl, const char *name);
/// Milliseconds until the DTLS retransmission timer fires, or -1 when no timer runs.
long hg_ssl_timeout_ms(SSL *ssl);
int hg_ssl_handle_timeout(SSL *ssl);
/// Retransmits a lost flight after 400 ms, doubling to at most 3 s (OpenSSL's default: 1 s doubling to 60 s).
void hg_ssl_use_fast_retransmission(SSL *ssl);

// MARK: - The datagram BIO
// Each BIO_write is one outgoing datagram, kept apart from the next; each fed datagram is returned by exactly one
// BIO_read. A plain memory BIO would glue handshake records into one oversized datagram.

BIO *hg_dgram_bio_new(long mtu);
/// Copies one received datagram in; the next BIO_read returns it.
void hg_dgram_bio_feed(BIO *bio, const uint8_t *bytes, size_t length);
/// Lends one received datagram without copying it: the next BIO_read returns it. The bytes must stay valid until
/// `hg_dgram_bio_take_back`, which forgets what was not read.
void hg_dgram_bio_lend(BIO *bio, const uint8_t *bytes, size_t length);
void hg_dgram_bio_take_back(BIO *bio);
/// Sets the peer address bytes that cookies are computed over.
void hg_dgram_bio_set_peer(BIO *bio, const uint8_t *bytes, size_t length);
/// The next datagram written goes into `dest` (at most `capacity` bytes) rather than the queue, if it is the first
/// since the queue was cleared and fits; hg_dgram_bio_take_destination says its length (0 if none went there) and
/// forgets `dest`. Datagrams after it are queued as usual.
void hg_dgram_bio_set_destination(BIO *bio, uint8_t *dest, size_t capacity);
size_t hg_dgram_bio_take_destination(BIO *bio);
size_t hg_dgram_bio_out_count(BIO *bio);
/// The index-th queued outgoing datagram; valid until hg_dgram_bio_out_clear.
const uint8_t *hg_dgram_bio_out_datagram(BIO *bio, size_t index, size_t *length);
void hg_dgram_bio_out_clear(BIO *bio);

// MARK: - Stateless cookies (RFC 6347 §4.2.1)
// HMAC-SHA256 over the peer address under a server secret; the previous secret is still accepted after a rotation.

typedef struct hg_cookie_secrets hg_cookie_secrets;
hg_cookie_secrets *hg_cookie_secrets_new(void);
void hg_cookie_secrets_free(hg_cookie_secrets *secrets);
/// Makes a new current secret; the old current one becomes the previous one.
int hg_cookie_secrets_rotate(hg_cookie_secrets *secrets);
/// Installs the cookie callbacks; the context's ex_data slot 0 points at `secrets` (owned by the caller).
void hg_ctx_use_cookies(SSL_CTX *ctx, hg_cookie_secrets *secrets);

// MARK: - Certificates

/// Loads a PEM certificate chain (leaf first) and its PEM private key into the context. Returns 1 on success;
/// otherwise writes a reason into `error`.
int hg_ctx_use_pem(SSL_CTX *ctx, const char *chain, size_t chain_length, const char *key, size_t key_length,
                   char *error, size_t error_length);
/// Makes a self-signed ECDSA P-256 certificate for the given DNS names (the first is the subject CN), valid from
/// `not_before_offset` seconds from now for `days` days. Writes PEM certificate and key into malloc'd buffers.
int hg_make_self_signed(const char *const *names, size_t count, long not_before_offset, int days, char **cert_pem,
                        size_t *cert_length, char **key_pem, size_t *key_length);
/// The peer certificate's SHA-256 fingerprint (32 bytes). Returns 0 if there is no peer certificate.
int hg_ssl_peer_fingerprint(SSL *ssl, uint8_t *out32);
/// A one-line description of the peer certificate: "names=a,b issuer=... not_after=...". Returns 0 if none.
int hg_ssl_describe_peer(SSL *ssl, char *out, size_t out_length);
/// Installs a verify callback that accepts any chain (the fingerprint is checked after the handshake).
void hg_ctx_accept_any_certificate(SSL_CTX *ctx);

#endif

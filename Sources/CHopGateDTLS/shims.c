#include "CHopGateDTLS.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

int hg_ctx_set_dtls12_only(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) && SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION);
}

void hg_ctx_set_options(SSL_CTX *ctx) {
    // The application sets the MTU (no kernel query on a memory BIO); no renegotiation, no compression, no tickets:
    // sessions are long-lived tunnels, and the tunnel has its own resumption.
    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET
                                 | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

int hg_ssl_set_link_mtu(SSL *ssl, long mtu) { return (int)DTLS_set_link_mtu(ssl, mtu); }

// The link MTU is only read when a handshake flight is written; the MTU itself applies to every later record too.
int hg_ssl_change_mtu(SSL *ssl, long mtu) {
    if (DTLS_set_link_mtu(ssl, mtu) != 1) return 0;
    return SSL_set_mtu(ssl, mtu) > 0 ? 1 : 0;
}

// OpenSSL's default retransmission timer starts at 1 s and doubles to 60 s (RFC 6347 §4.2.4.1), so at 20% loss a
// handshake can take half a minute. A tunnel wants to come back fast on a lossy link: start at 400 ms and stop
// doubling at 3 s. The handshake deadline, not the timer, decides when to give up.
static unsigned int retransmit_timer(SSL *ssl, unsigned int previous_us) {
    (void)ssl;
    if (previous_us == 0) return 400000;
    return previous_us >= 1500000 ? 3000000 : previous_us * 2;
}

void hg_ssl_use_fast_retransmission(SSL *ssl) { DTLS_set_timer_cb(ssl, retransmit_timer); }

int hg_ssl_set_server_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }

long hg_ssl_timeout_ms(SSL *ssl) {
    struct timeval tv;
    if (DTLSv1_get_timeout(ssl, &tv) != 1) return -1;
    return (long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int hg_ssl_handle_timeout(SSL *ssl) { return (int)DTLSv1_handle_timeout(ssl); }

int hg_ssl_peer_fingerprint(SSL *ssl, uint8_t *out32) {
    X509 *peer = SSL_get0_peer_certificate(ssl);
    unsigned int length = 0;
    if (peer == NULL) return 0;
    return X509_digest(peer, EVP_sha256(), out32, &length) == 1 && length == 32;
}

int hg_ssl_describe_peer(SSL *ssl, char *out, size_t out_length) {
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL) {
        STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
        if (chain != NULL && sk_X509_num(chain) > 0) peer = sk_X509_value(chain, 0);
    }
    if (peer == NULL || out_length == 0) return 0;
    char names[512] = "";
    GENERAL_NAMES *sans = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(sans, i);
        if (name->type != GEN_DNS) continue;
        const char *dns = (const char *)ASN1_STRING_get0_data(name->d.dNSName);
        if (names[0] != '\0') strncat(names, ",", sizeof(names) - strlen(names) - 1);
        strncat(names, dns, sizeof(names) - strlen(names) - 1);
    }
    GENERAL_NAMES_free(sans);
    if (names[0] == '\0') {
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, names, sizeof(names));
    }
    char issuer[256] = "";
    X509_NAME_oneline(X509_get_issuer_name(peer), issuer, sizeof(issuer));
    char not_after[64] = "";
    BIO *memory = BIO_new(BIO_s_mem());
    if (memory != NULL && ASN1_TIME_print(memory, X509_get0_notAfter(peer)) == 1) {
        int n = BIO_read(memory, not_after, sizeof(not_after) - 1);
        not_after[n > 0 ? n : 0] = '\0';
    }
    BIO_free(memory);
    snprintf(out, out_length, "names=%s issuer=%s not_after=%s", names, issuer, not_after);
    return 1;
}

static int accept_any(int preverify, X509_STORE_CTX *store) {
    (void)preverify;
    (void)store;
    return 1;
}

void hg_ctx_accept_any_certificate(SSL_CTX *ctx) { SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any); }

// A NULL passphrase callback makes OpenSSL prompt on the terminal for an encrypted key: refuse instead.
static int no_passphrase(char *buffer, int size, int rwflag, void *userdata) {
    (void)buffer;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

static void put_error(char *error, size_t error_length, const char *what) {
    unsigned long code = ERR_get_error();
    char reason[256] = "";
    if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
    snprintf(error, error_length, "%s%s%s", what, code != 0 ? ": " : "", reason);
    ERR_clear_error();
}

int hg_ctx_use_pem(SSL_CTX *ctx, const char *chain, size_t chain_length, const char *key, size_t key_length,
                   char *error, size_t error_length) {
    int ok = 0;
    BIO *chain_bio = BIO_new_mem_buf(chain, (int)chain_length);
    BIO *key_bio = BIO_new_mem_buf(key, (int)key_length);
    X509 *leaf = NULL;
    EVP_PKEY *pkey = NULL;
    if (chain_bio == NULL || key_bio == NULL) {
        put_error(error, error_length, "out of memory");
        goto done;
    }
    leaf = PEM_read_bio_X509(chain_bio, NULL, no_passphrase, NULL);
    if (leaf == NULL || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        put_error(error, error_length, "the certificate is not a PEM certificate");
        goto done;
    }
    SSL_CTX_clear_chain_certs(ctx);
    for (;;) {
        X509 *intermediate = PEM_read_bio_X509(chain_bio, NULL, no_passphrase, NULL);
        if (intermediate == NULL) {
            // The chain ends at "no start line"; any other error is a broken intermediate, not the end.
            unsigned long code = ERR_peek_last_error();
            if (code != 0 && !(ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE)) {
                put_error(error, error_length, "an intermediate certificate does not parse");
                goto done;
            }
            break;
        }
        if (SSL_CTX_add0_chain_cert(ctx, intermediate) != 1) {
            X509_free(intermediate);
            put_error(error, error_length, "cannot add an intermediate certificate");
            goto done;
        }
    }
    ERR_clear_error();  // the loop ends on a "no start line" error
    pkey = PEM_read_bio_PrivateKey(key_bio, NULL, no_passphrase, NULL);
    if (pkey == NULL) {
        put_error(error, error_length, "the key is not an unencrypted PEM private key");
        goto done;
    }
    if (X509_check_private_key(leaf, pkey) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1
        || SSL_CTX_check_private_key(ctx) != 1) {
        put_error(error, error_length, "the private key does not match the certificate");
        goto done;
    }
    ok = 1;
done:
    X509_free(leaf);
    EVP_PKEY_free(pkey);
    BIO_free(chain_bio);
    BIO_free(key_bio);
    return ok;
}

static int to_pem(int (*write)(BIO *, void *), void *object, char **out, size_t *out_length) {
    BIO *memory = BIO_new(BIO_s_mem());
    char *data = NULL;
    if (memory == NULL || write(memory, object) != 1) {
        BIO_free(memory);
        return 0;
    }
    long length = BIO_get_mem_data(memory, &data);
    *out = malloc((size_t)length);
    if (*out != NULL) memcpy(*out, data, (size_t)length);
    *out_length = (size_t)length;
    BIO_free(memory);
    return *out != NULL;
}

static int write_cert(BIO *bio, void *cert) { return PEM_write_bio_X509(bio, cert); }
static int write_key(BIO *bio, void *key) { return PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL); }

int hg_make_self_signed(const char *const *names, size_t count, long not_before_offset, int days, char **cert_pem,
                        size_t *cert_length, char **key_pem, size_t *key_length) {
    int ok = 0;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    if (key == NULL || cert == NULL || serial == NULL || sans == NULL || count == 0) goto done;
    X509_set_version(cert, 2);
    if (BN_rand(serial, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1
        || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL)
        goto done;
    X509_gmtime_adj(X509_getm_notBefore(cert), not_before_offset);
    X509_gmtime_adj(X509_getm_notAfter(cert), not_before_offset + (long)days * 86400);
    if (X509_set_pubkey(cert, key) != 1) goto done;
    X509_NAME *subject = X509_get_subject_name(cert);
    // A CN is at most 64 characters (RFC 5280 ub-common-name); longer first names live only in the SANs.
    const char *common_name = strlen(names[0]) <= 64 ? names[0] : "hopgate self-signed";
    if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)common_name, -1, -1, 0) != 1
        || X509_set_issuer_name(cert, subject) != 1)
        goto done;
    for (size_t i = 0; i < count; i++) {
        GENERAL_NAME *name = GENERAL_NAME_new();
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (name == NULL || dns == NULL || ASN1_STRING_set(dns, names[i], -1) != 1) {
            GENERAL_NAME_free(name);
            ASN1_IA5STRING_free(dns);
            goto done;
        }
        GENERAL_NAME_set0_value(name, GEN_DNS, dns);
        if (sk_GENERAL_NAME_push(sans, name) == 0) {
            GENERAL_NAME_free(name);
            goto done;
        }
    }
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) != 1) goto done;
    if (X509_sign(cert, key, EVP_sha256()) == 0) goto done;
    ok = to_pem(write_cert, cert, cert_pem, cert_length) && to_pem(write_key, key, key_pem, key_length);
done:
    GENERAL_NAMES_free(sans);
    BN_free(serial);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

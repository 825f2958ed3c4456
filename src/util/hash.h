/*
 * hash.h: SHA-256, FNV-1a, OS randomness and constant-time comparison.
 *
 * SHA-256 comes from OpenSSL's libcrypto (already on every machine that has
 * libcurl4-openssl-dev); randomness from getrandom(2). Used for API tokens
 * (stored as SHA-256, compared in constant time) and content-addressed images.
 * FNV-1a is the one fast non-cryptographic hash: for seeding and hash tables,
 * never for anything an attacker may choose to collide.
 */
#ifndef SF_HASH_H
#define SF_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Raw 32-byte digest of data. */
void sha256_raw(const void *data, size_t len, unsigned char out[32]);
/* Lowercase hex digest of data, NUL-terminated. */
void sha256_hex(const void *data, size_t len, char out[65]);
/* 64-bit FNV-1a of len bytes (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3); data may be NULL when len is 0. Stable across builds and
 * machines: the procedural backend's pictures depend on it. */
/* SHA-256 of bytes that arrive in pieces (a download written as it
 * streams): begin, update any number of times, then hex (which ends it). */
struct sha256_stream {
    void *ctx; /* libcrypto's EVP_MD_CTX */
};
void sha256_stream_begin(struct sha256_stream *s);
void sha256_stream_update(struct sha256_stream *s, const void *data, size_t len);
void sha256_stream_hex(struct sha256_stream *s, char out[65]);
/* Ends a stream without its digest (safe after hex, and twice). */
void sha256_stream_free(struct sha256_stream *s);

uint64_t fnv1a64(const void *data, size_t len);
/* Fills buf with len bytes from the OS CSPRNG; 0 on success, -1 on failure. */
int random_bytes(void *buf, size_t len);
/* 1 when the n bytes at a and b are equal, in time independent of content. */
int ct_equal(const void *a, const void *b, size_t n);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

#endif

/*
 * hash.c: thin wrappers over libcrypto's SHA-256 and getrandom(2), and
 * FNV-1a (a few lines no library on the machine offers on its own).
 */
#include "util/hash.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

void sha256_raw(const void *data, size_t len, unsigned char out[32])
{
    unsigned int outlen = 32;
    EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL);
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char raw[32];
    sha256_raw(data, len, raw);
    hex_encode(raw, 32, out);
}

void sha256_stream_begin(struct sha256_stream *s)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        c = NULL;
    }
    s->ctx = c;
}

void sha256_stream_update(struct sha256_stream *s, const void *data, size_t len)
{
    if (s->ctx)
        EVP_DigestUpdate(s->ctx, data, len);
}

void sha256_stream_hex(struct sha256_stream *s, char out[65])
{
    unsigned char raw[32] = {0};
    unsigned int n = 32;
    if (s->ctx)
        EVP_DigestFinal_ex(s->ctx, raw, &n);
    hex_encode(raw, 32, out);
    sha256_stream_free(s);
}

void sha256_stream_free(struct sha256_stream *s)
{
    EVP_MD_CTX_free(s->ctx);
    s->ctx = NULL;
}

uint64_t fnv1a64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/*
 * stdwebhook.c: Standard Webhooks 1.0 signing, ids and retry waits
 * (stdwebhook.h). HMAC and base64 encoding come from libcrypto, which the
 * daemon already links for SHA-256; decoding goes through our strict
 * base64_decode (util/base64.c), so a secret with stray bytes is refused at
 * start instead of becoming a different key.
 */
#include "util/stdwebhook.h"

#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "util/base64.h"
#include "util/hash.h"

static const char PREFIX[] = "whsec_";

int stdwebhook_key(const char *secret, unsigned char *key, char *why, size_t whylen)
{
    size_t plen = sizeof(PREFIX) - 1;
    if (strncmp(secret, PREFIX, plen) != 0) {
        snprintf(why, whylen, "must be whsec_ followed by base64 (e.g. from "
                              "`openssl rand -base64 32`)");
        return -1;
    }
    unsigned char *raw;
    size_t n;
    const char *b64 = secret + plen;
    /* base64_decode accepts line breaks and a data: prefix; a secret has neither */
    if (strpbrk(b64, "\r\n:") || base64_decode(b64, strlen(b64), &raw, &n) < 0) {
        snprintf(why, whylen, "the part after whsec_ is not valid base64");
        return -1;
    }
    if (n < STDWEBHOOK_KEY_MIN || n > STDWEBHOOK_KEY_MAX) {
        snprintf(why, whylen, "the key after whsec_ is %zu bytes; it must be %d to %d", n,
                 STDWEBHOOK_KEY_MIN, STDWEBHOOK_KEY_MAX);
        free(raw);
        return -1;
    }
    memcpy(key, raw, n);
    memset(raw, 0, n);
    free(raw);
    return (int)n;
}

int stdwebhook_check_secret(const char *value, char *why, size_t whylen)
{
    unsigned char key[STDWEBHOOK_KEY_MAX];
    if (!*value)
        return 0;
    int n = stdwebhook_key(value, key, why, whylen);
    memset(key, 0, sizeof(key));
    return n < 0 ? -1 : 0;
}

void stdwebhook_sign(const unsigned char *key, size_t keylen, const char *id,
                     long long timestamp, const char *body, size_t body_len,
                     char out[STDWEBHOOK_SIG_LEN])
{
    char ts[24];
    int tslen = snprintf(ts, sizeof(ts), "%lld", timestamp);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    /* The signed content is three parts joined by dots: EVP_MAC takes them
     * one after the other, so the body is not copied into a joined buffer. */
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    int ok = c && EVP_MAC_init(c, key, keylen, params) &&
             EVP_MAC_update(c, (const unsigned char *)id, strlen(id)) &&
             EVP_MAC_update(c, (const unsigned char *)".", 1) &&
             EVP_MAC_update(c, (const unsigned char *)ts, (size_t)tslen) &&
             EVP_MAC_update(c, (const unsigned char *)".", 1) &&
             EVP_MAC_update(c, (const unsigned char *)body, body_len) &&
             EVP_MAC_final(c, mac, &outl, sizeof(mac));
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    maclen = ok ? (unsigned int)outl : 0;
    memcpy(out, "v1,", 3);
    if (maclen != 32) { /* libcrypto without HMAC: a signature no receiver accepts */
        strcpy(out + 3, "unsigned");
        return;
    }
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
}

void stdwebhook_new_id(char out[STDWEBHOOK_ID_LEN])
{
    uuid_t u;
    uuid_generate_random(u);
    memcpy(out, "msg_", 4);
    hex_encode(u, sizeof(u), out + 4);
    out[STDWEBHOOK_ID_LEN - 1] = '\0';
}

int64_t stdwebhook_backoff_ms(int64_t base_ms, int64_t cap_ms, int failed, double r)
{
    if (failed < 1)
        failed = 1;
    if (r < 0)
        r = 0;
    if (r >= 1)
        r = 0.999999;
    int64_t ceiling = base_ms;
    for (int i = 1; i < failed && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    return (int64_t)(r * (double)ceiling);
}

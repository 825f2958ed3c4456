/*
 * base64.c: base64_decode (see base64.h) as a checker in front of OpenSSL's
 * EVP_DecodeBlock.
 *
 * libcrypto does the decoding, but EVP_DecodeBlock alone is too lenient and
 * too blunt for our contract: it takes '=' anywhere as a zero symbol, trims
 * stray bytes at the end, ignores non-canonical bits, wants the padding
 * present, and always returns a multiple of 3 bytes. So one pass here keeps
 * only the alphabet (dropping line breaks, refusing anything else), checks
 * where the padding is, completes missing padding, and afterwards the length
 * is corrected for the padding and the last quantum is re-encoded to prove
 * the text was canonical.
 */
#include "util/base64.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static int in_alphabet(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int base64_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    /* Some A1111 forks answer with a data URL. */
    if (in_len > 5 && memcmp(in, "data:", 5) == 0) {
        const char *comma = memchr(in, ',', in_len);
        if (!comma || comma - in < 7 || memcmp(comma - 7, ";base64", 7) != 0)
            return -1;
        in_len -= (size_t)(comma + 1 - in);
        in = comma + 1;
    }
    /* EVP_DecodeBlock takes an int length. */
    if (in_len > (size_t)INT_MAX - 4)
        return -1;

    char *text = xmalloc(in_len + 4);
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\n' || c == '\r')
            continue;
        if (c == '=')
            pad++;
        else if (!in_alphabet(c) || pad > 0) /* a stray byte, or data after padding */
            goto bad;
        text[n++] = (char)c;
    }
    size_t symbols = n - pad, rem = symbols % 4;
    /* One leftover symbol is never valid; padding, when present, must
     * complete the last quantum exactly. */
    if (symbols == 0 || rem == 1 || (pad && (rem == 0 || rem + pad != 4)))
        goto bad;
    size_t fill = rem ? 4 - rem : 0; /* '=' in the last quantum, once completed */
    while (n < symbols + fill)
        text[n++] = '=';

    unsigned char *buf = xmalloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n);
    if (got < 0 || (size_t)got != n / 4 * 3) {
        free(buf);
        goto bad;
    }
    size_t len = (size_t)got - fill; /* EVP counts each '=' as a zero byte */
    if (fill) {
        /* Canonical iff the last bytes encode back to the last quantum: the
         * bits a short quantum drops must be zero. */
        unsigned char again[5];
        EVP_EncodeBlock(again, buf + len - (3 - fill), (int)(3 - fill));
        if (memcmp(again, text + n - 4, 4) != 0) {
            free(buf);
            goto bad;
        }
    }
    free(text);
    *out = buf;
    *out_len = len;
    return 0;
bad:
    free(text);
    return -1;
}

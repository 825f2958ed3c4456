/*
 * test_base64.c: the strict base64 decoder (util/base64.c).
 *
 * The decoder sits between libcrypto and servers we do not control, and its
 * job is mostly to say no: so the refusals (padding in the middle, stray
 * bytes, non-canonical endings, the bytes EVP_DecodeBlock would silently
 * accept) get as many checks as the round trips. The first block is the set
 * that used to live in test_backends.c, unchanged.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util/base64.h"
#include "util/xalloc.h"

static unsigned char *out;
static size_t n;

/* Decodes a C string; the result stays in out/n until the next call. */
static int dec(const char *s)
{
    free(out);
    return base64_decode(s, strlen(s), &out, &n);
}

static void test_contract(void)
{
    CHECK(base64_decode("aGVsbG8=", 8, &out, &n) == 0 && n == 5 && memcmp(out, "hello", 5) == 0);
    free(out);
    CHECK(base64_decode("aGVsbG8", 7, &out, &n) == 0 && n == 5); /* unpadded */
    free(out);
    CHECK(base64_decode("aGVs\nbG8=", 9, &out, &n) == 0 && n == 5);
    free(out);
    CHECK(base64_decode("data:image/png;base64,aGk=", 26, &out, &n) == 0 && n == 2);
    free(out);
    CHECK(base64_decode("aGVsbG8==", 9, &out, &n) == -1);
    CHECK(base64_decode("aGk=aGk=", 8, &out, &n) == -1);
    CHECK(base64_decode("a", 1, &out, &n) == -1);
    CHECK(base64_decode("aGVs bG8=", 9, &out, &n) == -1);
    CHECK(base64_decode("aGl=", 4, &out, &n) == -1); /* non-canonical */
    CHECK(base64_decode("", 0, &out, &n) == -1);
    out = NULL;
}

static void test_lengths_and_padding(void)
{
    /* Exact lengths whatever the padding: 1, 2 and 3 bytes in the last quantum. */
    CHECK(dec("aQ==") == 0 && n == 1 && out[0] == 'i');
    CHECK(dec("aQ") == 0 && n == 1 && out[0] == 'i');
    CHECK(dec("aGk=") == 0 && n == 2 && memcmp(out, "hi", 2) == 0);
    CHECK(dec("aGk") == 0 && n == 2 && memcmp(out, "hi", 2) == 0);
    CHECK(dec("aGV5") == 0 && n == 3 && memcmp(out, "hey", 3) == 0);
    CHECK(dec("AAAA") == 0 && n == 3 && memcmp(out, "\0\0\0", 3) == 0);
    /* Line breaks anywhere, CRLF too, even between data and padding. */
    CHECK(dec("\r\naG\r\nk\n=\n") == 0 && n == 2 && memcmp(out, "hi", 2) == 0);
    CHECK(dec("data:;base64,aGV5") == 0 && n == 3);

    /* Padding: too much, too little, alone, or in the middle. */
    CHECK(dec("aQ=") == -1);
    CHECK(dec("aQ===") == -1);
    CHECK(dec("aGV5=") == -1);
    CHECK(dec("aGV5====") == -1);
    CHECK(dec("=") == -1);
    CHECK(dec("====") == -1);
    CHECK(dec("aG=k") == -1);
    CHECK(dec("aGk=\n") == 0); /* a trailing line break is not data */
    /* Non-canonical endings: bits the short quantum would drop. */
    CHECK(dec("aR==") == -1);
    CHECK(dec("aR") == -1);
    CHECK(dec("aGm") == -1);
    CHECK(dec("aGl") == -1);
    /* A lone symbol after whole quanta. */
    CHECK(dec("aGV5a") == -1);
    CHECK(dec("\n\r\n") == -1); /* nothing but line breaks */
    CHECK(out == NULL && n == 0);
}

static void test_refusals(void)
{
    /* Bytes EVP_DecodeBlock alone would trim or take: refused here. */
    CHECK(dec(" aGk=") == -1);
    CHECK(dec("aGk= ") == -1);
    CHECK(dec("aGk=-") == -1);
    CHECK(dec("aGk=\t") == -1);
    CHECK(dec("aG-k") == -1); /* URL-safe alphabet */
    CHECK(dec("aG_k") == -1);
    CHECK(dec("aGk\xc3\xa9") == -1);
    CHECK(base64_decode("aG\0k", 4, &out, &n) == -1);
    /* Data URLs that are not base64, or have nothing after the comma. */
    CHECK(dec("data:image/png,aGk=") == -1);
    CHECK(dec("data:image/png;base64") == -1);
    CHECK(dec("data:image/png;base64,") == -1);
    CHECK(dec("data:image/png;charset=x;base64;,aGk=") == -1);
    CHECK(out == NULL && n == 0);
}

/* Whatever libcrypto encodes comes back byte for byte, with or without its
 * padding and with line breaks every 76 characters as MIME writes them. */
static void test_round_trips(void)
{
    unsigned char data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    int bad = 0;
    for (size_t len = 1; len <= sizeof data; len += (len < 20 ? 1 : 37)) {
        char *enc = xmalloc(len / 3 * 4 + 8);
        int el = EVP_EncodeBlock((unsigned char *)enc, data, (int)len);
        if (dec(enc) != 0 || n != len || memcmp(out, data, len) != 0)
            bad++;
        size_t unpadded = (size_t)el;
        while (unpadded && enc[unpadded - 1] == '=')
            unpadded--;
        free(out);
        if (base64_decode(enc, unpadded, &out, &n) != 0 || n != len || memcmp(out, data, len) != 0)
            bad++;
        char *mime = xmalloc((size_t)el + (size_t)el / 76 * 2 + 2);
        size_t m = 0;
        for (int i = 0; i < el; i++) {
            if (i && i % 76 == 0) {
                mime[m++] = '\r';
                mime[m++] = '\n';
            }
            mime[m++] = enc[i];
        }
        mime[m] = '\0';
        if (dec(mime) != 0 || n != len || memcmp(out, data, len) != 0)
            bad++;
        free(mime);
        free(enc);
    }
    CHECK(bad == 0);
    free(out);
    out = NULL;
}

int main(void)
{
    test_contract();
    test_lengths_and_padding();
    test_refusals();
    test_round_trips();
    UNIT_END("base64");
}

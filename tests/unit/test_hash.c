/*
 * test_hash.c: the hashing helpers of util/hash.c against published vectors.
 *
 * FNV-1a seeds the procedural pictures, so a change to it would silently
 * change every image a re-run draws; SHA-256 names the stored image files.
 * Both are checked against the reference values, not against themselves.
 */
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "util/hash.h"

static void test_fnv1a64(void)
{
    /* The vectors of the FNV reference (draft-eastlake-fnv, test suite). */
    CHECK(fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    CHECK(fnv1a64(NULL, 0) == 0xcbf29ce484222325ULL);
    CHECK(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    CHECK(fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
    /* Length, not NUL, ends the input. */
    CHECK(fnv1a64("a\0b", 3) != fnv1a64("a", 1));
    CHECK(fnv1a64("ab", 1) == fnv1a64("a", 1));
    /* Bytes above 0x7f are taken unsigned. */
    const unsigned char hi[] = {0xff};
    CHECK(fnv1a64(hi, 1) == ((0xcbf29ce484222325ULL ^ 0xffULL) * 0x100000001b3ULL));
}

static void test_sha256(void)
{
    char hex[65];
    sha256_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hex_and_compare(void)
{
    char hex[9];
    const unsigned char b[] = {0x00, 0x0f, 0xa0, 0xff};
    hex_encode(b, sizeof b, hex);
    CHECK_STR(hex, "000fa0ff");
    CHECK(ct_equal("abcd", "abcd", 4));
    CHECK(!ct_equal("abcd", "abce", 4));
    unsigned char r1[16] = {0}, r2[16] = {0};
    CHECK(random_bytes(r1, sizeof r1) == 0 && random_bytes(r2, sizeof r2) == 0);
    CHECK(memcmp(r1, r2, sizeof r1) != 0);
}

int main(void)
{
    test_fnv1a64();
    test_sha256();
    test_hex_and_compare();
    UNIT_END("hash");
}

/*
 * fuzz.h: what the libFuzzer harnesses in tests/fuzz/ share.
 *
 * Each tests/fuzz/fuzz_<name>.c is one harness: libFuzzer calls its
 * LLVMFuzzerTestOneInput with bytes, and the harness hands them to the real
 * code (the project's objects, built by `make fuzz` with ASan and UBSan)
 * the way the daemon would. A crash, a sanitizer report, a leak, or a
 * FUZZ_ASSERT that fails is a finding: libFuzzer saves the input under
 * build/fuzz/artifacts/ and tools/fuzz.sh reports it.
 *
 * Inputs that carry several things (a method and a path; a theme, an item
 * and a template) are split into lines with fuzz_line(), so that the seed
 * files in tests/fuzz/corpus/<name>/ stay readable and editable by hand.
 */
#ifndef SF_FUZZ_H
#define SF_FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property the code promises; its failure is a finding like a crash. */
#define FUZZ_ASSERT(cond)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FUZZ_ASSERT failed %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                      \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* The same hash seed every run, so that an input replays the same way
 * (jansson otherwise seeds its hash tables from /dev/urandom). */
static inline void fuzz_init_json(void)
{
    json_object_seed(1);
}

/* A malloc'd NUL-terminated copy of n bytes (a NUL inside ends the C
 * string early, as it would for text that reached us as a C string). */
static inline char *fuzz_strndup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Takes the next line off (*data, *size), without its '\n', as a malloc'd
 * C string; the whole rest when there is no '\n'. */
static inline char *fuzz_line(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = *size ? memchr(*data, '\n', *size) : NULL;
    size_t n = nl ? (size_t)(nl - *data) : *size;
    char *line = fuzz_strndup(*data, n);
    *data += nl ? n + 1 : n;
    *size -= nl ? n + 1 : n;
    return line;
}

/* 1 when s (NUL-terminated) is one line: no byte below 0x20 and no DEL. */
static inline int fuzz_one_line(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* 1 when s (NUL-terminated) is valid UTF-8, as jansson checks it: text that
 * is not cannot go into a JSON string (json_string gives NULL). */
static inline int fuzz_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/*
 * Calls text_of (http_error_text, comfy_describe_rejection: the one-line
 * reason of an error answer) on body at the buffer sizes the backends use
 * and smaller: the text must fit, and be one line of valid UTF-8, since it
 * goes into an item's "error".
 */
static inline void fuzz_error_text(void (*text_of)(const char *, size_t, char *, size_t),
                                   const char *body, size_t len)
{
    static const size_t sizes[] = {700, 512, 300, 64, 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char text[700];
        memset(text, 'x', sizeof text);
        text_of(body, len, text, sizes[i]);
        FUZZ_ASSERT(strlen(text) < sizes[i]);
        FUZZ_ASSERT(fuzz_one_line(text));
        FUZZ_ASSERT(fuzz_utf8(text));
    }
}

#endif

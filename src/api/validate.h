/*
 * validate.h: field checks shared by the resource handlers.
 *
 * Each check looks at one key of a request body. When the key is absent it
 * does nothing and returns 0. When present and valid it copies the
 * normalised value into out (a JSON object being assembled) and returns 1.
 * When invalid it records a sentence under the key in fields and returns -1.
 * A handler runs all its checks, then fails once with every bad field named.
 */
#ifndef SF_VALIDATE_H
#define SF_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

/* A string of minlen..maxlen characters (code points). null counts as ""
 * when minlen is 0; with minlen > 0, only-whitespace is refused too. */
int v_string(const json_t *body, const char *key, size_t minlen, size_t maxlen,
             json_t *out, json_t *fields);
/* v_string for text that becomes part of a prompt or a name on one line:
 * a control character (newline, tab, escape) is refused too. */
int v_line(const json_t *body, const char *key, size_t minlen, size_t maxlen, json_t *out,
           json_t *fields);

/* A JSON integer in min..max; when multiple > 1 it must divide the value. */
int v_integer(const json_t *body, const char *key, long long min, long long max,
              long long multiple, json_t *out, json_t *fields);

/* A JSON number (integer or real) in min..max, stored as a real. */
int v_number(const json_t *body, const char *key, double min, double max,
             json_t *out, json_t *fields);

/* A JSON boolean. */
int v_boolean(const json_t *body, const char *key, json_t *out, json_t *fields);

/* A LoRA list: [{"name"|"path": str, "weight": number in [-5, 5]}], at most
 * 32, normalised to {"name", "path" (those given), "weight"}, weight
 * default 1.0. */
int v_loras(const json_t *body, const char *key, json_t *out, json_t *fields);

/* Number of UTF-8 code points in s (s is valid UTF-8: jansson checked). */
size_t utf8_length(const char *s);

#endif

/*
 * validate.c: the field checks. Messages name the rule that was broken, so
 * a client can fix the request without reading the docs.
 */
#include "api/validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static int bad(json_t *fields, const char *key, const char *msg)
{
    json_object_set_new(fields, key, json_string(msg));
    return -1;
}

int v_string(const json_t *body, const char *key, size_t minlen, size_t maxlen,
             json_t *out, json_t *fields)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (json_is_null(v) && minlen == 0) {
        json_object_set_new(out, key, json_string(""));
        return 1;
    }
    char msg[128];
    if (!json_is_string(v)) {
        snprintf(msg, sizeof(msg), "must be a string");
        return bad(fields, key, msg);
    }
    size_t n = utf8_length(json_string_value(v));
    if (minlen > 0 && n > 0 && strspn(json_string_value(v), " \t\r\n") == json_string_length(v)) {
        snprintf(msg, sizeof(msg), "must not be blank");
        return bad(fields, key, msg);
    }
    if (n < minlen || n > maxlen) {
        if (minlen == 1 && n == 0)
            snprintf(msg, sizeof(msg), "must not be empty");
        else
            snprintf(msg, sizeof(msg), "must be %zu to %zu characters long (got %zu)", minlen, maxlen, n);
        return bad(fields, key, msg);
    }
    json_object_set(out, key, v);
    return 1;
}

int v_line(const json_t *body, const char *key, size_t minlen, size_t maxlen, json_t *out,
           json_t *fields)
{
    int r = v_string(body, key, minlen, maxlen, out, fields);
    const char *s = json_string_value(json_object_get(body, key));
    if (r == 1 && s)
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
            if (*p < 0x20 || *p == 0x7f) {
                json_object_del(out, key);
                return bad(fields, key, "must be one line of text (no control characters)");
            }
    return r;
}

int v_integer(const json_t *body, const char *key, long long min, long long max,
              long long multiple, json_t *out, json_t *fields)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    char msg[128];
    if (!json_is_integer(v)) {
        snprintf(msg, sizeof(msg), "must be an integer");
        return bad(fields, key, msg);
    }
    long long x = json_integer_value(v);
    if (x < min || x > max || (multiple > 1 && x % multiple != 0)) {
        if (multiple > 1)
            snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld, divisible by %lld", min, max, multiple);
        else
            snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld", min, max);
        return bad(fields, key, msg);
    }
    json_object_set(out, key, v);
    return 1;
}

int v_number(const json_t *body, const char *key, double min, double max,
             json_t *out, json_t *fields)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    char msg[128];
    if (!json_is_number(v)) {
        snprintf(msg, sizeof(msg), "must be a number");
        return bad(fields, key, msg);
    }
    double x = json_number_value(v);
    if (!isfinite(x) || x < min || x > max) {
        snprintf(msg, sizeof(msg), "must be a number from %g to %g", min, max);
        return bad(fields, key, msg);
    }
    json_object_set_new(out, key, json_real(x));
    return 1;
}

int v_boolean(const json_t *body, const char *key, json_t *out, json_t *fields)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return bad(fields, key, "must be true or false");
    json_object_set(out, key, v);
    return 1;
}

/*
 * A LoRA reference names a file inside the inference server's own LoRA
 * folder: a name, or a relative path. An absolute path, a drive letter, a
 * ".." component or a control character would let a caller make the
 * server (or the command backend) read any file it can reach, so they are
 * refused here, before anything is stored or sent.
 */
static int lora_ref_ok(const char *s)
{
    if (s[0] == '/' || s[0] == '\\' || (s[0] && s[1] == ':'))
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    for (const char *p = s; *p;) { /* each component, split at / and \ */
        size_t n = strcspn(p, "/\\");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += n;
        if (*p)
            p++;
    }
    return 1;
}

int v_loras(const json_t *body, const char *key, json_t *out, json_t *fields)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (json_is_null(v)) {
        json_object_set_new(out, key, json_array());
        return 1;
    }
    if (!json_is_array(v))
        return bad(fields, key, "must be an array of {\"name\", \"weight\"} objects");
    if (json_array_size(v) > 32)
        return bad(fields, key, "at most 32 LoRAs");
    json_t *list = json_array();
    size_t i;
    json_t *l;
    char msg[160];
    json_array_foreach(v, i, l) {
        if (!json_is_object(l)) {
            snprintf(msg, sizeof(msg), "item %zu must be an object with \"name\" (or \"path\") and \"weight\"", i);
            goto fail;
        }
        json_t *norm = json_object();
        int named = 0, bad_name = 0;
        static const char *const keys[] = {"name", "path"};
        for (int k = 0; k < 2; k++) {
            json_t *name = json_object_get(l, keys[k]);
            if (!name)
                continue;
            if (!json_is_string(name) || json_string_length(name) == 0 ||
                utf8_length(json_string_value(name)) > 500)
                bad_name = 1;
            else
                json_object_set(norm, keys[k], name);
            named = 1;
        }
        if (!named || bad_name) {
            json_decref(norm);
            snprintf(msg, sizeof(msg), "item %zu needs a non-empty string \"name\" or \"path\" (at most 500 characters)", i);
            goto fail;
        }
        for (int k = 0; k < 2; k++) {
            const char *ref = json_string_value(json_object_get(norm, keys[k]));
            if (ref && !lora_ref_ok(ref)) {
                json_decref(norm);
                snprintf(msg, sizeof(msg), "item %zu: \"%s\" must be a name or a path relative to the "
                         "server's LoRA folder (no leading \"/\", no \"..\", no control characters)",
                         i, keys[k]);
                goto fail;
            }
        }
        json_t *w = json_object_get(l, "weight");
        double weight = 1.0;
        if (w) {
            if (!json_is_number(w) || !isfinite(json_number_value(w)) ||
                json_number_value(w) < -5 || json_number_value(w) > 5) {
                json_decref(norm);
                snprintf(msg, sizeof(msg), "item %zu: weight must be a number from -5 to 5", i);
                goto fail;
            }
            weight = json_number_value(w);
        }
        json_object_set_new(norm, "weight", json_real(weight));
        json_array_append_new(list, norm);
    }
    json_object_set_new(out, key, list);
    return 1;
fail:
    json_decref(list);
    return bad(fields, key, msg);
}

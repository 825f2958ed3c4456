/*
 * errtext.c: the "error text" of an HTTP error answer, for messages.
 *
 * When an inference server refuses a request, the item's error should carry
 * the server's own words ("CUDA out of memory", "Sampler not found"), not a
 * page of JSON. Each server family wraps them differently, so this file
 * knows the shapes: FastAPI's "detail" (a string, or validation errors with
 * a location), sd-server's "message"/"error", webui's {"error": name,
 * "errors": text}, {"error": {"message"}}; anything else (an HTML page from
 * a proxy) is shown by its start. The result is always one line
 * (util/oneline.c), as messages end up in logs and JSON fields.
 */
#include "backends/errtext.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "util/oneline.h"

void http_error_text(const char *body, size_t len, char *dst, size_t dstlen)
{
    if (dstlen == 0)
        return;
    dst[0] = '\0';
    if (!body || len == 0) {
        snprintf(dst, dstlen, "(empty answer)");
        return;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    if (json_is_object(j)) {
        const json_t *d = json_object_get(j, "detail");
        const char *text = NULL;
        if (json_is_string(d) && json_string_length(d))
            text = json_string_value(d);
        else if (json_is_array(d) && json_array_size(d) > 0) {
            /* FastAPI validation errors: [{"loc": [...], "msg": "..."}] */
            const json_t *e0 = json_array_get(d, 0);
            const char *msg = json_string_value(json_object_get(e0, "msg"));
            const json_t *loc = json_object_get(e0, "loc");
            char buf[512] = "";
            size_t o = 0;
            size_t i;
            json_t *part;
            json_array_foreach(loc, i, part) {
                int n = json_is_string(part)
                            ? snprintf(buf + o, sizeof buf - o, "%s%s", i ? "." : "",
                                       json_string_value(part))
                            : snprintf(buf + o, sizeof buf - o, "%s%lld", i ? "." : "",
                                       (long long)json_integer_value(part));
                if (n < 0 || (size_t)n >= sizeof buf - o)
                    break;
                o += (size_t)n;
            }
            char line[1024];
            snprintf(line, sizeof line, "%s%s%s", buf, buf[0] ? ": " : "",
                     msg ? msg : "invalid request");
            one_line(line, strlen(line), dst, dstlen);
            json_decref(j);
            return;
        }
        if (!text)
            text = json_string_value(json_object_get(j, "message"));
        const json_t *e = json_object_get(j, "error");
        if (!text && json_is_object(e))
            text = json_string_value(json_object_get(e, "message"));
        /* webui's handler: {"error": "OutOfMemoryError", "errors": "CUDA out
         * of memory..."}: the exception's name, then its text. */
        const char *errors = json_string_value(json_object_get(j, "errors"));
        if (!text && errors && *errors) {
            char line[1024];
            const char *ename = json_string_value(e);
            snprintf(line, sizeof line, "%s%s%s", ename ? ename : "", ename ? ": " : "", errors);
            one_line(line, strlen(line), dst, dstlen);
            json_decref(j);
            return;
        }
        if (!text)
            text = json_string_value(e);
        if (text && *text) {
            one_line(text, strlen(text), dst, dstlen);
            json_decref(j);
            return;
        }
    }
    json_decref(j);
    /* Not JSON (an HTML page from a proxy, say): its start, on one line,
     * up to a NUL byte if there is one. */
    one_line(body, strnlen(body, len < 300 ? len : 300), dst, dstlen);
}

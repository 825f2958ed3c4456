/*
 * infotext.c: A1111's "parameters" text (see infotext.h for the layout and
 * why setforge writes it).
 */
#include "util/infotext.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* A1111 (modules/processing.py, quote()) writes a value as a JSON string
 * when it holds a separator of the line; its reader unquotes a value that
 * starts and ends with a quote. Quotes are quoted too, so that a value that
 * merely starts with one is read back as written. */
static void put_value(struct strbuf *sb, const char *v)
{
    if (!strpbrk(v, ",:\n\r\"")) {
        sb_puts(sb, v);
        return;
    }
    json_t *s = json_string(v);
    char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    sb_puts(sb, q ? q : "\"\"");
    free(q);
    json_decref(s);
}

char *infotext_format(const char *prompt, const char *negative,
                      const struct infotext_param *params, size_t nparams)
{
    struct strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, prompt ? prompt : "");
    if (negative && *negative)
        sb_printf(&sb, "\nNegative prompt: %s", negative);
    sb_putc(&sb, '\n');
    int first = 1;
    for (size_t i = 0; i < nparams; i++) {
        if (!params[i].value || !*params[i].value)
            continue;
        if (!first)
            sb_puts(&sb, ", ");
        first = 0;
        sb_printf(&sb, "%s: ", params[i].key);
        put_value(&sb, params[i].value);
    }
    return sb_detach(&sb, NULL);
}

void infotext_number(double v, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.6g", v);
}

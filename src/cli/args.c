/*
 * args.c: the client's command line (args.h).
 */
#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when " name " is in list. */
static int listed(const char *list, const char *name, size_t len)
{
    for (const char *p = list; p && (p = strstr(p, name)); p++)
        if (p > list && p[-1] == ' ' && p[len] == ' ')
            return 1;
    return 0;
}

int args_parse(struct cli_args *a, int argc, char **argv, int from, const char *takes,
               const char *flags, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    for (int i = from; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-o") == 0)
            s = "--output";
        if (strncmp(s, "--", 2) != 0 || s[2] == '\0') {
            if (a->npos == ARGS_MAX_POS) {
                snprintf(err, errlen, "unexpected argument \"%s\"", argv[i]);
                return -1;
            }
            a->pos[a->npos++] = argv[i];
            continue;
        }
        const char *name = s + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        char key[32];
        if (len >= sizeof key) {
            snprintf(err, errlen, "unknown option \"%s\"", argv[i]);
            return -1;
        }
        memcpy(key, name, len);
        key[len] = '\0';
        const char *value;
        if (listed(takes, key, len)) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                snprintf(err, errlen, "--%s needs a value", key);
                return -1;
            }
        } else if (listed(flags, key, len) && !eq) {
            value = "";
        } else {
            snprintf(err, errlen, "unknown option \"%s\"", argv[i]);
            return -1;
        }
        if (a->nopts == ARGS_MAX_OPTS) {
            snprintf(err, errlen, "too many options");
            return -1;
        }
        memcpy(a->name[a->nopts], key, len + 1);
        a->value[a->nopts++] = value;
    }
    return 0;
}

const char *args_get(const struct cli_args *a, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < a->nopts; i++)
        if (strcmp(a->name[i], name) == 0)
            v = a->value[i];
    return v;
}

int args_has(const struct cli_args *a, const char *name)
{
    return args_get(a, name) != NULL;
}

int args_parse_int(const char *s, long long *out)
{
    if (!s || !*s)
        return -1;
    const char *p = s[0] == '-' ? s + 1 : s;
    if (!*p)
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

int args_parse_id(const char *s, long long *out)
{
    long long v;
    if (args_parse_int(s, &v) < 0 || v < 1 || v > (1LL << 53))
        return -1;
    *out = v;
    return 0;
}

/* 1..5 decimal digits, not starting the number with a sign: 0 or -1. */
static int dim(const char *s, size_t n, int *out)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1)
        return -1;
    *out = v;
    return 0;
}

int args_parse_size(const char *s, int *w, int *h)
{
    if (!s)
        return -1;
    const char *x = strpbrk(s, "xX");
    if (!x || strpbrk(x + 1, "xX"))
        return -1;
    int ww, hh;
    if (dim(s, (size_t)(x - s), &ww) < 0 || dim(x + 1, strlen(x + 1), &hh) < 0)
        return -1;
    *w = ww;
    *h = hh;
    return 0;
}

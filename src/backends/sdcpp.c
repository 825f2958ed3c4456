/*
 * sdcpp.c: LoRA paths and size alignment of stable-diffusion.cpp's
 * sd-server (the rules are in sdcpp.h; why they exist, in docs/backends.md).
 */
#include "backends/sdcpp.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int sdcpp_size_explain(int want_w, int want_h, int got_w, int got_h)
{
    if (want_w <= 0 || want_h <= 0)
        return 0;
    for (int a = 1; a <= SDCPP_MAX_ALIGN; a *= 2)
        if (align_up(want_w, a) == got_w && align_up(want_h, a) == got_h)
            return a;
    return 0;
}

/* ---- LoRA names ---- */

/* The length of s without a known LoRA file extension. */
static size_t without_ext(const char *s, size_t n)
{
    static const char *const exts[] = {".safetensors", ".ckpt", ".pt", ".bin", ".gguf", NULL};
    for (const char *const *e = exts; *e; e++) {
        size_t k = strlen(*e);
        if (n > k && strncasecmp(s + n - k, *e, k) == 0)
            return n - k;
    }
    return n;
}

/* The file name of s: after the last '/' or '\\', without its extension. */
static const char *stem_of(const char *s, size_t *len)
{
    const char *b = s;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == '\\')
            b = p + 1;
    *len = without_ext(b, strlen(b));
    return b;
}

static int same_ci(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && strncasecmp(a, b, an) == 0;
}

/* Edit distance of two short strings, ignoring ASCII case, capped at 9. */
static int distance(const char *a, size_t an, const char *b, size_t bn)
{
    if (an > 64 || bn > 64)
        return 9;
    int row[65];
    for (size_t j = 0; j <= bn; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= an; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= bn; j++) {
            int up = row[j];
            int cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
            int best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn] > 9 ? 9 : row[bn];
}

/* needle (n bytes) occurs in hay (h bytes), ignoring case. */
static int contains_ci(const char *hay, size_t h, const char *needle, size_t n)
{
    for (size_t i = 0; n && i + n <= h; i++)
        if (strncasecmp(hay + i, needle, n) == 0)
            return 1;
    return 0;
}

static void hint_add(char *hint, size_t hintlen, int *count, const char *path)
{
    if (*count >= 5)
        return;
    size_t used = strlen(hint);
    snprintf(hint + used, hintlen - used, "%s%s", *count ? ", " : "", path);
    (*count)++;
}

/* Does entry path p match wanted w by rule r (1..4)? */
static int rule_matches(int r, const char *p, const char *w)
{
    size_t pn = strlen(p), wn = strlen(w), ps, ws;
    switch (r) {
    case 1:
        return strcmp(p, w) == 0;
    case 2:
        return same_ci(p, pn, w, wn);
    case 3:
        return same_ci(p, without_ext(p, pn), w, without_ext(w, wn));
    default: {
        const char *pb = stem_of(p, &ps), *wb = stem_of(w, &ws);
        return ws > 0 && same_ci(pb, ps, wb, ws);
    }
    }
}

enum lora_match sdcpp_lora_match(const json_t *list, const char *wanted, const char **path,
                                 char *hint, size_t hintlen)
{
    *path = NULL;
    if (hintlen)
        hint[0] = '\0';
    size_t n = json_array_size(list);
    for (int r = 1; r <= 4; r++) {
        int hits = 0;
        for (size_t i = 0; i < n; i++) {
            const char *p = json_string_value(json_object_get(json_array_get(list, i), "path"));
            if (!p || !*p || !rule_matches(r, p, wanted))
                continue;
            if (hits++ == 0)
                *path = p;
        }
        if (hits == 1)
            return LORA_FOUND;
        if (hits > 1) {
            int count = 0;
            for (size_t i = 0; i < n; i++) {
                const char *p =
                    json_string_value(json_object_get(json_array_get(list, i), "path"));
                if (p && *p && rule_matches(r, p, wanted))
                    hint_add(hint, hintlen, &count, p);
            }
            *path = NULL;
            return LORA_AMBIGUOUS;
        }
    }
    size_t ws;
    const char *wb = stem_of(wanted, &ws);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(json_object_get(json_array_get(list, i), "path"));
        if (!p || !*p)
            continue;
        size_t ps;
        const char *pb = stem_of(p, &ps);
        if ((ws >= 3 && contains_ci(pb, ps, wb, ws)) || (ps >= 3 && contains_ci(wb, ws, pb, ps)) ||
            distance(pb, ps, wb, ws) <= 3)
            hint_add(hint, hintlen, &count, p);
    }
    return LORA_NONE;
}

/*
 * lora.c: reading the LoRAs of a job, and writing their weights.
 *
 * A job's LoRAs come from the CSV item as [{"name"|"path": s, "weight": f}];
 * every backend puts them somewhere else (A1111 prompt tags, sd-server's
 * "lora" field, ComfyUI LoraLoader nodes, a command's argv), but all read an
 * entry the same way and print a weight the same short way ("0.8", not
 * "0.800000"), which A1111's tag parser and people reading argv both like.
 */
#include "backends/lora.h"

#include <stdio.h>
#include <string.h>

int be_lora_get(const json_t *loras, size_t i, const char **name, const char **path,
                double *weight)
{
    const json_t *l = json_array_get(loras, i);
    const char *n = json_string_value(json_object_get(l, "name"));
    const char *p = json_string_value(json_object_get(l, "path"));
    const json_t *w = json_object_get(l, "weight");
    *name = n && *n ? n : NULL;
    *path = p && *p ? p : NULL;
    *weight = json_is_number(w) ? json_number_value(w) : 1.0;
    return *name || *path ? 0 : -1;
}

void be_fmt_weight(double w, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%.4f", w);
    char *dot = strchr(buf, '.');
    if (!dot)
        return;
    char *end = buf + strlen(buf);
    while (end > dot + 1 && end[-1] == '0')
        *--end = '\0';
    if (end == dot + 1)
        *dot = '\0';
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, buflen, "0");
}

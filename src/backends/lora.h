/*
 * lora.h: a job's LoRA entries, read and formatted one way for every backend.
 */
#ifndef SF_LORA_H
#define SF_LORA_H

#include <jansson.h>
#include <stddef.h>

/*
 * Reads entry i of job->loras ({"name"|"path": s, "weight": f}): *name and
 * *path (either may come back NULL, not both; borrowed from loras) and
 * *weight (default 1). Returns -1 when the entry has neither a name nor a
 * path (or there is no entry i).
 */
int be_lora_get(const json_t *loras, size_t i, const char **name, const char **path,
                double *weight);

/* Formats a weight the short way: 0.8, 1, -0.25 (at most 4 decimals; -0 is
 * 0). Also used for cfg_scale in a command's argv. */
void be_fmt_weight(double w, char *buf, size_t buflen);

#endif

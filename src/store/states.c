/*
 * states.c: the one name table of each state machine (states.h).
 */
#include "store/states.h"

#include <string.h>

static const char *const item_names[ITEM_NSTATES] = {
    [ITEM_QUEUED] = "queued",       [ITEM_RUNNING] = "running", [ITEM_SUCCEEDED] = "succeeded",
    [ITEM_FAILED] = "failed",       [ITEM_CANCELED] = "canceled",
};

static const char *const run_names[RUN_NSTATES] = {
    [RUN_QUEUED] = "queued", [RUN_RUNNING] = "running",   [RUN_COMPLETED] = "completed",
    [RUN_FAILED] = "failed", [RUN_CANCELED] = "canceled", [RUN_PAUSED] = "paused",
};

const char *item_state_name(enum item_state s)
{
    return (unsigned)s < ITEM_NSTATES ? item_names[s] : "unknown";
}

const char *run_state_name(enum run_state s)
{
    return (unsigned)s < RUN_NSTATES ? run_names[s] : "unknown";
}

static int parse(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int item_state_parse(const char *name, enum item_state *out)
{
    int i = parse(item_names, ITEM_NSTATES, name);
    if (i >= 0)
        *out = (enum item_state)i;
    return i >= 0 ? 0 : -1;
}

int run_state_parse(const char *name, enum run_state *out)
{
    int i = parse(run_names, RUN_NSTATES, name);
    if (i >= 0)
        *out = (enum run_state)i;
    return i >= 0 ? 0 : -1;
}

int run_state_is_final(enum run_state s)
{
    return s == RUN_COMPLETED || s == RUN_FAILED || s == RUN_CANCELED;
}

/*
 * args.h: reading the client's command line. Every client command takes
 * the same shape: the command word, positional arguments, and options
 * "--name VALUE" or "--name=VALUE" (flags such as --json and --wait take no
 * value). A command says which options it takes; anything else is a usage
 * error (exit 2) naming it. Pure functions, unit-tested.
 */
#ifndef SF_CLI_ARGS_H
#define SF_CLI_ARGS_H

#include <stddef.h>

#define ARGS_MAX_POS 4
#define ARGS_MAX_OPTS 12

struct cli_args {
    const char *pos[ARGS_MAX_POS];
    int npos;
    char name[ARGS_MAX_OPTS][32];     /* option names without "--" */
    const char *value[ARGS_MAX_OPTS]; /* their values; "" for a flag */
    int nopts;
};

/*
 * Reads argv[from..argc-1]. `takes` lists the options with a value and
 * `flags` those without, each as " name name " (spaces around every name;
 * "-o" is the short form of "output"). 0, or -1 with a sentence in err.
 */
int args_parse(struct cli_args *a, int argc, char **argv, int from, const char *takes,
               const char *flags, char *err, size_t errlen);

/* The value of option name, or NULL when it was not given (the last one wins). */
const char *args_get(const struct cli_args *a, const char *name);
int args_has(const struct cli_args *a, const char *name);

/* "512x720" (also "512X720") into *w, *h: 0, or -1 when it is not two
 * positive decimal integers of at most 5 digits around an x. The API judges
 * the range. */
int args_parse_size(const char *s, int *w, int *h);

/* A decimal integer, optionally negative, all of s: 0, or -1. */
int args_parse_int(const char *s, long long *out);

/* A positive id (1..2^53): 0, or -1. */
int args_parse_id(const char *s, long long *out);

#endif

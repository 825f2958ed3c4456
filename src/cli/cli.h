/*
 * cli.h: setforge as a client of a running daemon (docs/client.md).
 *
 * `setforge templates`, `template ID`, `import FILE.csv`, `generate
 * TEMPLATE [--wait]`, `runs`, `cancel|retry|pause|resume RUN` and `download
 * ALBUM` speak the HTTP API of the daemon at --url ($SETFORGE_URL,
 * http://127.0.0.1:8080) with the token in $SETFORGE_TOKEN. main.c hands
 * the command line over when cli_is_command() knows its first word; the
 * daemon's own commands (serve, migrate, token, routes) use none of these
 * names.
 */
#ifndef SF_CLI_CLI_H
#define SF_CLI_CLI_H

#include <stdio.h>

/* 1 when name is a client command. */
int cli_is_command(const char *name);

/* Runs argv[1] with its arguments; returns the exit status (commands.h). */
int cli_main(int argc, char **argv);

/* The client commands' lines of `setforge help`. */
void cli_usage(FILE *out);

#endif

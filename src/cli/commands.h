/*
 * commands.h: the client commands, one function each (commands.c). Each
 * gets the connection and its parsed arguments, already checked for
 * unknown options and the number of positional arguments (cli.c), and
 * returns the process's exit status: 0 done, 1 the daemon said no or could
 * not be reached, 2 usage; generate --wait also 1 for a failed run and 3
 * for a canceled one.
 */
#ifndef SF_CLI_COMMANDS_H
#define SF_CLI_COMMANDS_H

#include "cli/args.h"
#include "cli/client.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2, CLI_CANCELED = 3 };

int cmd_templates(const struct cli_ctx *ctx, const struct cli_args *a);
int cmd_template(const struct cli_ctx *ctx, const struct cli_args *a);
int cmd_import(const struct cli_ctx *ctx, const struct cli_args *a);
int cmd_generate(const struct cli_ctx *ctx, const struct cli_args *a);
int cmd_runs(const struct cli_ctx *ctx, const struct cli_args *a);
int cmd_run_action(const struct cli_ctx *ctx, const struct cli_args *a); /* pos[0] is the verb */
int cmd_download(const struct cli_ctx *ctx, const struct cli_args *a);

#endif

/*
 * cli.c: the client commands' table, their usage lines and the reading of
 * their command lines (cli.h). Every command takes --url and --json; the
 * table says what else each one takes, so that a typo is a usage error
 * (exit 2) before anything is sent.
 */
#include "cli/cli.h"

#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"

struct command {
    const char *name;
    const char *usage;
    const char *takes;  /* options with a value, " a b " */
    const char *flags;  /* options without one */
    int npos;           /* positional arguments after the name */
    int (*run)(const struct cli_ctx *ctx, const struct cli_args *a);
};

static const struct command commands[] = {
    {"templates", "templates [--page N]", " url page ", " json ", 0, cmd_templates},
    {"template", "template ID", " url ", " json ", 1, cmd_template},
    {"import", "import FILE.csv --name N --prompt '...' [--size 512x720] [--description D]",
     " url name prompt size description ", " json ", 1, cmd_import},
    {"generate",
     "generate TEMPLATE --theme T --album A [--seed S] [--priority P] [--steps N] [--wait]",
     " url theme album seed priority steps ", " json wait ", 1, cmd_generate},
    {"runs", "runs [--status S] [--page N]", " url status page ", " json ", 0, cmd_runs},
    {"cancel", "cancel RUN", " url ", " json ", 1, cmd_run_action},
    {"retry", "retry RUN", " url ", " json ", 1, cmd_run_action},
    {"pause", "pause RUN", " url ", " json ", 1, cmd_run_action},
    {"resume", "resume RUN", " url ", " json ", 1, cmd_run_action},
    {"download", "download ALBUM [-o FILE.zip]", " url output ", " json ", 1, cmd_download},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int cli_is_command(const char *name)
{
    return find(name) != NULL;
}

void cli_usage(FILE *out)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  setforge %s\n", commands[i].usage);
    fprintf(out, "\nThey take --url URL (or SETFORGE_URL; default http://127.0.0.1:8080) and\n"
                 "--json (the API's answers as they are); the token comes from SETFORGE_TOKEN.\n"
                 "Exit status: 0 done, 1 refused or failed, 2 usage; generate --wait: 0 completed,\n"
                 "1 failed, 3 canceled.\n");
}

int cli_main(int argc, char **argv)
{
    const struct command *c = find(argv[1]);
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: setforge %s\n", c->usage);
            return CLI_OK;
        }
    /* The run verbs share one function: the verb stays as pos[0]. */
    int verb = c->run == cmd_run_action;
    struct cli_args a;
    char err[256] = "";
    if (args_parse(&a, argc, argv, verb ? 1 : 2, c->takes, c->flags, err, sizeof err) < 0 ||
        a.npos != c->npos + verb) {
        if (a.npos != c->npos + verb && !err[0])
            snprintf(err, sizeof err, "%s takes %d argument%s", c->name, c->npos,
                     c->npos == 1 ? "" : "s");
        fprintf(stderr, "setforge: %s\nusage: setforge %s\n", err, c->usage);
        return CLI_USAGE;
    }
    struct cli_ctx ctx;
    cli_ctx_init(&ctx, args_get(&a, "url"), args_has(&a, "json"));
    return c->run(&ctx, &a);
}

/*
 * command.c: the backend that runs a local program once per image, the way
 * the original system ran `python generate.py --prompt ... --output PATH`.
 *
 * The endpoint's argv is a template: placeholders such as {prompt} or
 * {output} are replaced inside each element, and the result is passed to
 * posix_spawnp as separate arguments, never through a shell, so a prompt
 * holding "; rm -rf ~" is only ever a prompt. The program writes its PNG to
 * {output} (a fresh file under <data_dir>/tmp/) or says where it put it with
 * a line "Image saved to: PATH", as generate.py did.
 *
 * stdout and stderr share one pipe, read with poll() so we can keep the last
 * 4 KiB (the error message of a failed item is the end of the output, where
 * a Python traceback names the error), enforce the time limit (SIGTERM, then
 * SIGKILL after 3 s) and notice cancellation within 100 ms. The child gets
 * its own process group so those signals also reach whatever it started.
 *
 * A non-zero exit is permanent (the program refused this input and will
 * again); a timeout or a death by signal (the OOM killer, say) is transient.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/backends_real.h"
#include "util/fsutil.h"
#include "util/hash.h"
#include "util/oneline.h"
#include "util/png.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

extern char **environ;

#define TAIL_MAX 4096
#define KILL_GRACE_MS 3000

struct command {
    char **argv; /* template, NULL-terminated */
    size_t argc;
    char who[96]; /* "command gen" */
};

/* ---- the argv template ---- */

static void join_loras(const json_t *loras, int weights, struct strbuf *sb)
{
    size_t n = json_is_array(loras) ? json_array_size(loras) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name, *path;
        double w;
        be_lora_get(loras, i, &name, &path, &w);
        if (i)
            sb_putc(sb, ',');
        if (weights) {
            char buf[32];
            be_fmt_weight(w, buf, sizeof buf);
            sb_puts(sb, buf);
        } else {
            sb_puts(sb, path ? path : name ? name : "");
        }
    }
}

/* One argv element with its placeholders replaced; unknown {words} stay as
 * they are (a program may take literal braces). */
static char *substitute(const char *tmpl, const struct sf_job *job, const char *output)
{
    struct strbuf sb;
    sb_init(&sb);
    const char *p = tmpl;
    while (*p) {
        if (*p != '{') {
            sb_putc(&sb, *p++);
            continue;
        }
        const char *end = strchr(p, '}');
        size_t n = end ? (size_t)(end - p - 1) : 0;
        const char *k = p + 1;
#define IS(word) (n == sizeof(word) - 1 && memcmp(k, word, n) == 0)
        char num[64];
        if (!end) {
            sb_putc(&sb, *p++);
            continue;
        } else if (IS("prompt")) {
            sb_puts(&sb, job->prompt ? job->prompt : "");
        } else if (IS("negative_prompt")) {
            sb_puts(&sb, job->negative_prompt ? job->negative_prompt : "");
        } else if (IS("seed")) {
            sb_printf(&sb, "%lld", job->seed);
        } else if (IS("steps")) {
            sb_printf(&sb, "%d", job->steps);
        } else if (IS("cfg_scale")) {
            be_fmt_weight(job->cfg_scale, num, sizeof num);
            sb_puts(&sb, num);
        } else if (IS("width")) {
            sb_printf(&sb, "%d", job->width);
        } else if (IS("height")) {
            sb_printf(&sb, "%d", job->height);
        } else if (IS("output")) {
            sb_puts(&sb, output);
        } else if (IS("lora_paths")) {
            join_loras(job->loras, 0, &sb);
        } else if (IS("lora_weights")) {
            join_loras(job->loras, 1, &sb);
        } else {
            sb_putc(&sb, *p++);
            continue;
        }
#undef IS
        p = end + 1;
    }
    return sb_detach(&sb, NULL);
}

static void free_argv(char **argv)
{
    for (char **a = argv; a && *a; a++)
        free(*a);
    free(argv);
}

/* ---- the child's output ---- */

struct output {
    char tail[TAIL_MAX];
    size_t tail_len;
    char line[4096]; /* the line being assembled */
    size_t line_len;
    char saved[4096]; /* PATH of the last "Image saved to: PATH" */
};

static void end_line(struct output *o)
{
    o->line[o->line_len] = '\0';
    if (o->line_len && o->line[o->line_len - 1] == '\r')
        o->line[--o->line_len] = '\0';
    const char *m = strstr(o->line, "Image saved to: ");
    if (m) {
        m += strlen("Image saved to: ");
        size_t n = strlen(m);
        while (n && (m[n - 1] == ' ' || m[n - 1] == '\t'))
            n--;
        snprintf(o->saved, sizeof o->saved, "%.*s", (int)n, m);
    }
    o->line_len = 0;
}

static void take(struct output *o, const char *buf, size_t n)
{
    /* Keep the last TAIL_MAX bytes. */
    if (n >= TAIL_MAX) {
        memcpy(o->tail, buf + n - TAIL_MAX, TAIL_MAX);
        o->tail_len = TAIL_MAX;
    } else {
        if (o->tail_len + n > TAIL_MAX) {
            size_t drop = o->tail_len + n - TAIL_MAX;
            memmove(o->tail, o->tail + drop, o->tail_len - drop);
            o->tail_len -= drop;
        }
        memcpy(o->tail + o->tail_len, buf, n);
        o->tail_len += n;
    }
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n')
            end_line(o);
        else if (o->line_len < sizeof o->line - 1)
            o->line[o->line_len++] = buf[i];
    }
}

/* The end of the output as one line that fits in room bytes: whitespace runs
 * become one space, control bytes '?', and when too long the start goes. */
static void tail_text(const struct output *o, char *dst, size_t room)
{
    /* Collapsing never lengthens, so flat holds all of the tail. */
    char flat[TAIL_MAX + 1];
    size_t n = one_line(o->tail, o->tail_len, flat, sizeof flat);
    if (room == 0)
        return;
    if (n == 0) {
        snprintf(dst, room, "(no output)");
    } else if (n < room) {
        memcpy(dst, flat, n + 1);
    } else if (room > 4) {
        /* Keep the end; skip UTF-8 continuation bytes so we do not start
         * mid-character. */
        size_t start = n - (room - 4);
        while (start < n && ((unsigned char)flat[start] & 0xc0) == 0x80)
            start++;
        snprintf(dst, room, "...%s", flat + start);
    } else {
        dst[0] = '\0';
    }
}

/* ---- running it ---- */

static void kill_group(pid_t pid, int sig)
{
    /* The child leads its own group (POSIX_SPAWN_SETPGROUP with 0). */
    if (kill(-pid, sig) < 0)
        kill(pid, sig);
}

static enum backend_result cmd_generate(struct sf_backend *b, const struct sf_job *job,
                                        struct sf_image *out, char *err, size_t errlen)
{
    struct command *c = b->state;
    memset(out, 0, sizeof *out);
    if (job->cancel && atomic_load(job->cancel)) {
        snprintf(err, errlen, "%s: canceled", c->who);
        return BACKEND_CANCELED;
    }
    const char *data_dir = job->data_dir && *job->data_dir ? job->data_dir : "/tmp";
    char *tmpdir = xasprintf("%s/tmp", data_dir);
    if (mkdir_p(tmpdir, 0755) < 0) {
        snprintf(err, errlen, "%s: cannot create %s: %s", c->who, tmpdir, strerror(errno));
        free(tmpdir);
        return BACKEND_TRANSIENT;
    }
    unsigned char rnd[8];
    char hex[17];
    random_bytes(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, hex);
    char *output = xasprintf("%s/cmd-%lld-%d-%s.png", tmpdir, job->run_id, job->item_index, hex);

    char **argv = xcalloc(c->argc + 1, sizeof *argv);
    for (size_t i = 0; i < c->argc; i++)
        argv[i] = substitute(c->argv[i], job, output);

    enum backend_result res = BACKEND_PERMANENT;
    int pfd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid = -1;
    /* O_CLOEXEC: a program another worker thread starts at the same moment
     * must not inherit our pipe (it would keep us from seeing EOF). */
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "%s: pipe: %s", c->who, strerror(errno));
        res = BACKEND_TRANSIENT;
        goto done;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    /* The daemon may ignore or block these; the program should not. */
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&defaults, sigs[i]);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    int sr = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pfd[1]);
    pfd[1] = -1;
    if (sr != 0) {
        snprintf(err, errlen, "%s: cannot start %s: %s", c->who, argv[0], strerror(sr));
        res = BACKEND_PERMANENT;
        goto done;
    }
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);

    struct output *o = xcalloc(1, sizeof *o);
    long budget_ms = be_budget_ms(b, job);
    long long deadline = mono_ms() + budget_ms;
    long long kill_at = 0; /* when SIGKILL follows SIGTERM; 0 = not killing */
    int timed_out = 0, canceled = 0, exited = 0, eof = 0, status = 0;
    for (;;) {
        if (!exited) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid || (w < 0 && errno == ECHILD))
                exited = 1;
        }
        if (exited) {
            /* Whatever is already in the pipe; a grandchild holding the
             * write end open must not keep us waiting. */
            char buf[4096];
            ssize_t n;
            while (!eof && (n = read(pfd[0], buf, sizeof buf)) != 0) {
                if (n < 0) {
                    if (errno == EINTR)
                        continue;
                    break;
                }
                take(o, buf, (size_t)n);
            }
            break;
        }
        long long now = mono_ms();
        if (!kill_at && job->cancel && atomic_load(job->cancel)) {
            canceled = 1;
            kill_group(pid, SIGTERM);
            kill_at = now + KILL_GRACE_MS;
        } else if (!kill_at && now >= deadline) {
            timed_out = 1;
            kill_group(pid, SIGTERM);
            kill_at = now + KILL_GRACE_MS;
        } else if (kill_at && now >= kill_at) {
            kill_group(pid, SIGKILL);
            kill_at = now + 3600 * 1000LL; /* once; then just wait */
        }
        if (eof) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&p, 1, 100);
        if (pr > 0) {
            char buf[4096];
            ssize_t n = read(pfd[0], buf, sizeof buf);
            if (n > 0)
                take(o, buf, (size_t)n);
            else if (n == 0)
                eof = 1;
        }
    }
    if (o->line_len)
        end_line(o);
    if (canceled || timed_out) /* its children too */
        kill_group(pid, SIGKILL);

    char tail[1024];
    /* Room for the tail once "command gen: timed out after 600 s: " is
     * written, so its end (the interesting part) survives. */
    size_t prefix = strlen(c->who) + 40, room = sizeof tail;
    if (errlen < prefix + room)
        room = errlen > prefix + 16 ? errlen - prefix : 16;
    tail_text(o, tail, room);
    if (canceled) {
        snprintf(err, errlen, "%s: canceled", c->who);
        res = BACKEND_CANCELED;
    } else if (timed_out) {
        snprintf(err, errlen, "%s: timed out after %.6g s: %s", c->who, budget_ms / 1000.0, tail);
        res = BACKEND_TRANSIENT;
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(err, errlen, "%s: killed by signal %d (%s): %s", c->who, sig, strsignal(sig),
                 tail);
        res = BACKEND_TRANSIENT;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "%s: exit %d: %s", c->who, WEXITSTATUS(status), tail);
        res = BACKEND_PERMANENT;
    } else {
        /* Exit 0: the image is at {output}, the path we chose. A path the
         * program printed ("Image saved to: X") is never read: a prompt it
         * echoes could name any file on the machine. A program that claims
         * success without a PNG will do so again. */
        const char *path = output;
        unsigned char *png = NULL;
        size_t len;
        char perr[256];
        int w, h;
        int got = read_file(path, BE_MAX_RESPONSE, &png, &len) == 0;
        if (!got && o->saved[0] && strcmp(o->saved, output) != 0) {
            snprintf(err, errlen, "%s: exit 0 but no image at {output}; the program saved it "
                     "somewhere else, which is not read (pass {output} to it): %s", c->who, tail);
            res = BACKEND_PERMANENT;
        } else if (!got) {
            snprintf(err, errlen, "%s: exit 0 but no image at %s (%s): %s", c->who, path,
                     strerror(errno), tail);
            res = BACKEND_PERMANENT;
        } else if (png_check(png, len, &w, &h, perr, sizeof perr) < 0) {
            snprintf(err, errlen, "%s: %s: %s", c->who, path, perr);
            free(png);
            res = BACKEND_PERMANENT;
        } else {
            out->png = png;
            out->png_len = len;
            out->width = w;
            out->height = h;
            out->seed = job->seed;
            res = BACKEND_OK;
        }
        /* Our scratch files go; a file the program chose to keep elsewhere
         * is the user's. */
        if (o->saved[0] && strcmp(o->saved, output) != 0 &&
            strncmp(o->saved, tmpdir, strlen(tmpdir)) == 0 && o->saved[strlen(tmpdir)] == '/' &&
            !strstr(o->saved, "/../"))
            unlink(o->saved);
    }
    free(o);
done:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    unlink(output);
    free_argv(argv);
    free(output);
    free(tmpdir);
    return res;
}

/* argv[0] is runnable: a path we may execute, or a name found in PATH. */
static int cmd_health(struct sf_backend *b, char *err, size_t errlen)
{
    struct command *c = b->state;
    const char *prog = c->argv[0];
    if (strchr(prog, '/')) {
        if (access(prog, X_OK) == 0)
            return 0;
        snprintf(err, errlen, "%s: %s is not executable: %s", c->who, prog, strerror(errno));
        return -1;
    }
    const char *path = getenv("PATH");
    char *dirs = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    int ok = 0;
    for (char *d = strtok_r(dirs, ":", &save); d && !ok; d = strtok_r(NULL, ":", &save)) {
        char *full = xasprintf("%s/%s", *d ? d : ".", prog);
        struct stat st;
        ok = stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0;
        free(full);
    }
    free(dirs);
    if (!ok)
        snprintf(err, errlen, "%s: %s not found in PATH", c->who, prog);
    return ok ? 0 : -1;
}

static void cmd_destroy(struct sf_backend *b)
{
    if (!b)
        return;
    struct command *c = b->state;
    if (c) {
        free_argv(c->argv);
        free(c);
    }
    free(b);
}

static const struct sf_backend_ops command_ops = {
    .type = "command",
    .generate = cmd_generate,
    .cancel = NULL, /* generate() watches the cancel flag itself */
    .health = cmd_health,
    .destroy = cmd_destroy,
};

struct sf_backend *command_backend_new(const json_t *ep, int index, char *err, size_t errlen)
{
    struct be_common cm;
    if (be_parse_common(ep, index, 600, &cm, err, errlen) < 0)
        return NULL;
    const json_t *av = json_object_get(ep, "argv");
    if (!json_is_array(av) || json_array_size(av) == 0) {
        be_errf(err, errlen, index, cm.name,
                "argv is required (a non-empty array of strings, e.g. [\"python3\", "
                "\"generate.py\", \"--prompt\", \"{prompt}\", \"--output\", \"{output}\"])");
        return NULL;
    }
    size_t n = json_array_size(av);
    if (n > 4096) {
        be_errf(err, errlen, index, cm.name, "argv has too many elements");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(av, i);
        if (!json_is_string(s) || (i == 0 && json_string_length(s) == 0) ||
            strlen(json_string_value(s)) != json_string_length(s)) {
            be_errf(err, errlen, index, cm.name,
                    "argv[%zu] must be a string without NUL bytes%s", i,
                    i == 0 ? " (and not empty)" : "");
            return NULL;
        }
    }
    struct command *c = xcalloc(1, sizeof *c);
    c->argc = n;
    c->argv = xcalloc(n + 1, sizeof *c->argv);
    for (size_t i = 0; i < n; i++)
        c->argv[i] = xstrdup(json_string_value(json_array_get(av, i)));
    snprintf(c->who, sizeof c->who, "command %s", cm.name);

    return backend_alloc(&command_ops, cm.name, cm.concurrency, cm.timeout_s, c);
}

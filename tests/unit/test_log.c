/*
 * test_log.c: a log message is one line whatever it carries: control
 * characters from outside (a decoded %0a, a terminal escape) are written as
 * \xNN, and printable text is untouched.
 */
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "util/log.h"

/* What log_info(fmt, arg) writes to stderr, without the timestamp. */
static char *logged(const char *fmt, const char *arg)
{
    static char buf[4096];
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    log_info(fmt, arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    buf[n > 0 ? n : 0] = '\0';
    char *sp = strstr(buf, " info ");
    return sp ? sp + 6 : buf;
}

static void control_characters_are_escaped(void)
{
    CHECK_STR(logged("GET %s 404", "/api/x\ninfo forged line"), "GET /api/x\\x0ainfo forged line 404\n");
    CHECK_STR(logged("%s", "\x1b[2J\r\t\x7f"), "\\x1b[2J\\x0d\\x09\\x7f\n");
}

static void printable_text_is_untouched(void)
{
    CHECK_STR(logged("GET %s 200", "/api/batch-templates?q=é ü"), "GET /api/batch-templates?q=é ü 200\n");
}

static void a_long_message_is_cut_not_split(void)
{
    char big[5000];
    memset(big, '\n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *out = logged("%s", big);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    CHECK(lines == 1);
}

int main(void)
{
    control_characters_are_escaped();
    printable_text_is_untouched();
    a_long_message_is_cut_not_split();
    UNIT_END("test_log");
}

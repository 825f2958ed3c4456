/*
 * fdlimit.c: the file descriptor budget (fdlimit.h).
 */
#include "util/fdlimit.h"

#include <sys/resource.h>

long fd_limit_raise(long *before)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        *before = -1;
        return -1;
    }
    *before = rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

long fd_reserve(long http_threads, long workers)
{
    /* stdio, the listening socket, logs, the checkpointer, the sweeper and
     * main with their SQLite connections, libraries' own (urandom, DNS) */
    long fixed = 64;
    /* per pool thread: SQLite (3), epoll (1), its wake-up pipe (2) */
    long per_thread = 6;
    /* per worker: a backend socket or a child's pipes (4), its finisher's
     * SQLite (3), the image file being stored and its directory (2), and
     * its own SQLite (3) */
    long per_worker = 12;
    return fixed + per_thread * http_threads + per_worker * workers;
}

long fd_conn_limit(long limit, long reserve, long wanted)
{
    long fit = (limit - reserve) / 2;
    if (fit < 8)
        fit = 8;
    return fit < wanted ? fit : wanted;
}

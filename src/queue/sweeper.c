/*
 * sweeper.c: the thread that keeps leases honest. Once a second it renews
 * the lease of every item this process holds (the heartbeat; items whose
 * outcome could not be recorded are left out) and puts back items whose
 * lease ran out, failing those out of attempts (queue_rescue).
 */
#include "queue/engine_int.h"

#include <stdlib.h>

#include "store/db.h"
#include "util/log.h"
#include "util/timeutil.h"

static void heartbeat(void)
{
    int n;
    long long *skip = finisher_abandoned(&n);
    queue_heartbeat(eng.owner, eng.cfg->lease_ms, skip, n);
    free(skip);
}

void *sweeper_main(void *arg)
{
    engine_open_db("sweeper");
    int64_t last = mono_ms();
    for (;;) {
        /* Kicks wake this sleep too; the work below runs once a second. */
        engine_sleep(1000 - (mono_ms() - last), NULL);
        if (atomic_load(&eng.stopping))
            break;
        if (mono_ms() - last < 1000)
            continue;
        last = mono_ms();
        heartbeat();
        int n = queue_rescue(eng.owner, RESCUE_EXPIRED, (int)eng.cfg->max_attempts);
        if (n > 0) {
            atomic_fetch_add(&eng.rescued, (unsigned long)n);
            log_warn("engine: %d items had expired leases and were rescued", n);
            engine_kick();
            engine_notify(-1);
        }
    }
    db_close_thread();
    return NULL;
}


/*
 * unit.h: the unit-test harness, a few macros and two counters.
 *
 * Each tests/unit/test_*.c is its own program: it runs its checks and ends
 * with UNIT_END(), which prints "RESULT <name> passed=N failed=N" for
 * tests/run.sh to add up, and exits non-zero when anything failed.
 */
#ifndef SF_UNIT_H
#define SF_UNIT_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int unit_passed, unit_failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            unit_passed++;                                                     \
        } else {                                                               \
            unit_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                      \
    } while (0)

#define CHECK_STR(got, want)                                                   \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        if (g_ && w_ && strcmp(g_, w_) == 0) {                                 \
            unit_passed++;                                                     \
        } else {                                                               \
            unit_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s == \"%s\", got \"%s\"\n",          \
                    __FILE__, __LINE__, #got, w_ ? w_ : "(null)",              \
                    g_ ? g_ : "(null)");                                       \
        }                                                                      \
    } while (0)

/* hay contains needle (messages are checked by their telling part). */
#define CHECK_HAS(hay, needle)                                                  \
    do {                                                                        \
        const char *h_ = (hay), *n_ = (needle);                                 \
        if (h_ && strstr(h_, n_)) {                                             \
            unit_passed++;                                                      \
        } else {                                                                \
            unit_failed++;                                                      \
            fprintf(stderr, "FAIL %s:%d: \"%s\" should contain \"%s\"\n",       \
                    __FILE__, __LINE__, h_ ? h_ : "(null)", n_);                \
        }                                                                       \
    } while (0)

/* Removes a test database and its -wal and -shm files. */
static inline void unit_remove_db(const char *path)
{
    char side[512];
    unlink(path);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
}

#define UNIT_END(name)                                                         \
    do {                                                                       \
        printf("RESULT %s passed=%d failed=%d\n", name, unit_passed,           \
               unit_failed);                                                   \
        return unit_failed ? 1 : 0;                                            \
    } while (0)

#endif

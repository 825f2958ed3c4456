/*
 * ratelimit.h: two in-memory limiters keyed by client, for generate.
 *
 * A window table counts requests per client in fixed windows aligned to
 * the clock (generate_rate: "60 calls a minute"). It is approximate on
 * purpose: a client owns a slot chosen by the hash of its key, and a client
 * whose hash lands on the same slot resets it.
 *
 * A bucket table keeps one token bucket per client, in items
 * (generate_items_per_minute, generate_items_burst): a bucket holds at most
 * `burst` items and refills at `per_minute`; a run takes as many items as
 * it has, or waits until they have refilled. Keys are compared exactly, so
 * two clients never share a bucket. The table is 512 sets of 8 buckets; a
 * client without a bucket takes an empty one of its set, or one that has
 * refilled to full (forgetting it loses nothing: a new bucket starts full),
 * or else the fullest one. That last case is the only loss: the client
 * forgotten then starts full when it comes back, so it gets at most what
 * it had still to refill. It needs more than 8 clients of one set to be
 * draining at once; the caps counted in the database (runs.h) bound the
 * queue whatever the buckets say.
 *
 * Both are thread-safe (one mutex each, held for a few hundred
 * instructions, never around anything else) and take the time from the
 * caller, so tests can move the clock.
 */
#ifndef SF_RATELIMIT_H
#define SF_RATELIMIT_H

#include <pthread.h>
#include <stdint.h>

#define WINDOW_SLOTS 1024
struct window_table {
    pthread_mutex_t mu;
    struct {
        uint64_t key_hash;
        long long window;
        long long count;
    } slot[WINDOW_SLOTS];
};
#define WINDOW_TABLE_INIT {.mu = PTHREAD_MUTEX_INITIALIZER}

/*
 * Counts one request of key in the window of window_s seconds that holds
 * now_s (Unix seconds). Returns 0 when it is among the first per_window of
 * that window, else the seconds until the next window (nothing counted).
 */
long long window_hit(struct window_table *t, const char *key, long long per_window,
                     long long window_s, long long now_s);

#define BUCKET_SETS 512
#define BUCKET_WAYS 8
#define BUCKET_KEY_MAX 64
struct bucket {
    char key[BUCKET_KEY_MAX]; /* "" = unused */
    double level;             /* items in the bucket at at_ms */
    int64_t at_ms;
};
struct bucket_table {
    pthread_mutex_t mu;
    struct bucket set[BUCKET_SETS][BUCKET_WAYS];
};
#define BUCKET_TABLE_INIT {.mu = PTHREAD_MUTEX_INITIALIZER}

/* A bucket's shape: it holds at most burst (>= 1) items and gains
 * per_minute (>= 1) of them a minute. */
struct bucket_rate {
    long long burst;
    long long per_minute;
};

/*
 * Takes n items (1 <= n <= rate->burst) from key's bucket at now_ms (a
 * monotonic clock). Returns 0 when they were there (now taken), else the
 * whole seconds (>= 1) until n will have refilled (nothing taken). Keys
 * longer than BUCKET_KEY_MAX - 1 bytes are cut there.
 */
long long bucket_take(struct bucket_table *t, const char *key, long long n,
                      const struct bucket_rate *rate, int64_t now_ms);

/* Puts n items back into key's bucket (up to burst): a run they were taken
 * for was not created after all. Nothing when the bucket was forgotten. */
void bucket_give_back(struct bucket_table *t, const char *key, long long n,
                      const struct bucket_rate *rate, int64_t now_ms);

#endif

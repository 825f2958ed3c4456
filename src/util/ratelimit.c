/*
 * ratelimit.c: the window table and the bucket table of ratelimit.h.
 */
#include "util/ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/hash.h"

long long window_hit(struct window_table *t, const char *key, long long per_window,
                     long long window_s, long long now_s)
{
    uint64_t h = fnv1a64(key, strlen(key));
    long long window = now_s / window_s;
    long long retry_after = 0;
    pthread_mutex_lock(&t->mu);
    size_t i = h % WINDOW_SLOTS;
    if (t->slot[i].key_hash != h || t->slot[i].window != window) {
        t->slot[i].key_hash = h;
        t->slot[i].window = window;
        t->slot[i].count = 0;
    }
    if (t->slot[i].count >= per_window)
        retry_after = (window + 1) * window_s - now_s;
    else
        t->slot[i].count++;
    pthread_mutex_unlock(&t->mu);
    return retry_after;
}

/* The bucket's level at now_ms: what it held, plus what has refilled since,
 * up to burst. A clock that went back refills nothing. */
static double level_now(const struct bucket *b, const struct bucket_rate *rate, int64_t now_ms)
{
    double gained = now_ms > b->at_ms ? (double)(now_ms - b->at_ms) * (double)rate->per_minute / 60000.0 : 0;
    double level = b->level + gained;
    return level < (double)rate->burst ? level : (double)rate->burst;
}

/* key's bucket, brought up to now_ms; NULL when it has none and create is
 * 0. A new bucket starts full, in the way of its set that is unused, or
 * full anyway, or else the fullest (ratelimit.h says what that costs). */
static struct bucket *find(struct bucket_table *t, const char *key, const struct bucket_rate *rate,
                           int64_t now_ms, int create)
{
    char k[BUCKET_KEY_MAX];
    snprintf(k, sizeof(k), "%s", key);
    struct bucket *ways = t->set[fnv1a64(k, strlen(k)) % BUCKET_SETS];
    struct bucket *victim = NULL;
    double victim_level = -1;
    for (int w = 0; w < BUCKET_WAYS; w++) {
        struct bucket *b = &ways[w];
        if (b->key[0] && strcmp(b->key, k) == 0) {
            b->level = level_now(b, rate, now_ms);
            b->at_ms = now_ms;
            return b;
        }
        double level = b->key[0] ? level_now(b, rate, now_ms) : (double)rate->burst + 1;
        if (level > victim_level) {
            victim = b;
            victim_level = level;
        }
    }
    if (!create)
        return NULL;
    memcpy(victim->key, k, sizeof(k));
    victim->level = (double)rate->burst;
    victim->at_ms = now_ms;
    return victim;
}

long long bucket_take(struct bucket_table *t, const char *key, long long n,
                      const struct bucket_rate *rate, int64_t now_ms)
{
    long long wait_s = 0;
    pthread_mutex_lock(&t->mu);
    struct bucket *b = find(t, key, rate, now_ms, 1);
    if (b->level >= (double)n) {
        b->level -= (double)n;
    } else {
        wait_s = (long long)ceil(((double)n - b->level) * 60.0 / (double)rate->per_minute);
        if (wait_s < 1)
            wait_s = 1;
    }
    pthread_mutex_unlock(&t->mu);
    return wait_s;
}

void bucket_give_back(struct bucket_table *t, const char *key, long long n,
                      const struct bucket_rate *rate, int64_t now_ms)
{
    pthread_mutex_lock(&t->mu);
    struct bucket *b = find(t, key, rate, now_ms, 0);
    if (b) {
        b->level += (double)n;
        if (b->level > (double)rate->burst)
            b->level = (double)rate->burst;
    }
    pthread_mutex_unlock(&t->mu);
}

/*
 * cache.c: answers to repeated GETs without touching SQLite.
 *
 * Why: a GET that reads SQLite pays for the WAL read lock (an fcntl pair on
 * the shared-memory file) and the statement, and that was most of the cost
 * of serving a template (docs/performance.md). Most reads repeat: a frontend
 * polls the same list and detail. An answer is kept with the database
 * generation read before its snapshot opened (db_generation); it is served
 * again only while no commit has happened since, so a cached answer is
 * never older than what a fresh read would return. The generation comes
 * from the application (struct sf_app in server.h), so http/ never reads
 * the database itself.
 *
 * Only routes marked ROUTE_CACHED in the route table use it: their answer is
 * a function of the path, the query, whether the caller is an admin, and the
 * database, nothing else (no clock, no engine state, no extra headers).
 *
 * The generation only moves on this process's commits. Someone editing the
 * file with the sqlite3 shell while the daemon runs is not seen by it, so an
 * answer is also dropped max_age_ms (the response_cache_max_age_ms setting,
 * 1 s by default) after its snapshot: such an edit shows in every answer that
 * long after it commits (each thread's copy ages on its own, so meanwhile two
 * reads may disagree), and the cost is one rebuild per answer per max age.
 *
 * The cache is per thread (libmicrohttpd's pool threads live as long as the
 * daemon), so a lookup takes no lock: a few direct-mapped slots, each with a
 * bounded body, freed when the thread ends.
 */
#include "http/cache.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define SLOTS 32               /* power of two */
#define MAX_BODY (256 * 1024)  /* larger answers are rebuilt each time */
static long long max_age_ms = 1000; /* set before the server's threads start */

void respcache_set_max_age_ms(long long ms)
{
    max_age_ms = ms;
}

struct slot {
    char *key;
    size_t keylen;
    struct respcache_stamp stamp;
    int status;
    const char *content_type; /* static, as handlers set it */
    char *body;
    size_t len;
};

static pthread_key_t slots_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void slots_free(void *p)
{
    struct slot *slots = p;
    for (int i = 0; i < SLOTS; i++) {
        free(slots[i].key);
        free(slots[i].body);
    }
    free(slots);
}

static void make_key(void)
{
    pthread_key_create(&slots_key, slots_free);
}

static struct slot *thread_slots(void)
{
    pthread_once(&key_once, make_key);
    struct slot *slots = pthread_getspecific(slots_key);
    if (!slots) {
        slots = xcalloc(SLOTS, sizeof(*slots));
        pthread_setspecific(slots_key, slots);
    }
    return slots;
}

static void key_add(struct respcache_key *k, const char *s, size_t n)
{
    if (k->overflow || k->len + n + 1 > sizeof(k->data)) {
        k->overflow = 1;
        return;
    }
    memcpy(k->data + k->len, s, n);
    k->len += n;
    k->data[k->len++] = '\0'; /* a separator no decoded value contains */
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
    struct respcache_key *k = cls;
    key_add(k, name, strlen(name));
    key_add(k, value ? value : "\x01", value ? strlen(value) : 1);
    return MHD_YES;
}

/* The key: who asks (admin or not), the path, then each query argument in
 * the order sent. Built once per request, for the lookup and the store. */
void respcache_key(const struct sf_request *req, uint64_t generation, struct respcache_key *k)
{
    k->len = 0;
    k->overflow = 0;
    key_add(k, req->is_admin ? "A" : "-", 1);
    key_add(k, req->path, strlen(req->path));
    if (req->conn)
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_arg, k);
    k->stamp.gen = generation;
    k->stamp.ms = mono_ms();
}

static struct slot *slot_of(const struct respcache_key *k)
{
    return &thread_slots()[fnv1a64(k->data, k->len) & (SLOTS - 1)];
}

int respcache_get(const struct respcache_key *k, struct sf_response *res)
{
    if (k->overflow)
        return 0;
    struct slot *s = slot_of(k);
    if (!s->key || s->stamp.gen != k->stamp.gen || k->stamp.ms - s->stamp.ms > max_age_ms ||
        s->keylen != k->len || memcmp(s->key, k->data, k->len) != 0)
        return 0;
    char *body = xmalloc(s->len ? s->len : 1);
    memcpy(body, s->body, s->len);
    res_body(res, s->status, s->content_type, body, s->len);
    return 1;
}

void respcache_put(const struct respcache_key *k, const struct sf_response *res)
{
    if (k->overflow || res->http_status != 200 || res->mhd_response || res->nheaders || res->body_len > MAX_BODY)
        return;
    struct slot *s = slot_of(k);
    free(s->key);
    free(s->body);
    s->key = xmalloc(k->len);
    memcpy(s->key, k->data, k->len);
    s->keylen = k->len;
    s->stamp = k->stamp;
    s->status = res->http_status;
    s->content_type = res->content_type;
    s->body = xmalloc(res->body_len ? res->body_len : 1);
    memcpy(s->body, res->body, res->body_len);
    s->len = res->body_len;
}

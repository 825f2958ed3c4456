/*
 * runs.c: generate, the /api/runs routes, and their live event stream.
 *
 * Generate resolves everything up front: each item's final prompt and seed
 * are computed here and stored with the item, so a worker (or a restart)
 * never needs the template again and a run is reproducible from its rows.
 * Who may generate, and how many items, is decided by api/limits.c.
 * Preview answers the first items generate would store, from the same
 * function (generate_plan), and queues nothing.
 *
 * The event stream replays run_events after Last-Event-ID and then waits
 * for news with its connection suspended (res_stream, http/stream.c), so
 * thousands of watchers cost no threads. This file writes the Server-Sent
 * Events wire text.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/bodies.h"
#include "api/limits.h"
#include "api/validate.h"
#include "queue/engine.h"
#include "queue/live.h"
#include "queue/queue.h"
#include "store/runs.h"
#include "store/templates.h"
#include "util/hash.h"
#include "util/placeholder.h"
#include "util/redact.h"
#include "util/timeutil.h"
#include "util/xalloc.h"


/* The worker slots an ETA is spread over: none while the queue is paused,
 * so no run promises a time then (runs_get). */
static int eta_parallelism(void)
{
    return engine_queue_paused() ? 0 : engine_parallelism();
}

/* ---- generate ------------------------------------------------------------ */

/* The longest callback_url, in bytes. */
#define CALLBACK_URL_MAX 2048

static void join_part(struct strbuf *sb, const char *part)
{
    if (!part || !*part)
        return;
    if (sb->len)
        sb_puts(sb, ". ");
    sb_puts(sb, part);
}

/* Control characters (a CSV cell's newline, a tab) become spaces: a prompt
 * is one line for every backend, and a program that echoes its prompt
 * cannot be made to print lines it did not write. */
static char *one_line_prompt(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return s;
}

/* The prompt of one item: the contract's rule, in its order. */
static char *item_prompt(const json_t *tpl, const json_t *item, const char *theme)
{
    struct strbuf sb;
    sb_init(&sb);
    join_part(&sb, json_string_value(json_object_get(tpl, "base_prompt")));
    char *style = xasprintf("Art style: %s", theme);
    join_part(&sb, style);
    free(style);
    char *body = placeholders_render(json_string_value(json_object_get(tpl, "prompt_template")),
                                     item, theme);
    join_part(&sb, body);
    free(body);
    join_part(&sb, json_string_value(json_object_get(tpl, "style_suffix")));
    return one_line_prompt(sb_detach(&sb, NULL));
}

static char *join_negative(const char *user, const char *tpl)
{
    if (user && *user && tpl && *tpl)
        return xasprintf("%s, %s", user, tpl);
    return xstrdup(user && *user ? user : (tpl ? tpl : ""));
}

static sf_status template_summary(long long id, json_t **out)
{
    return templates_get(id, TEMPLATE_SUMMARY, out);
}

/*
 * callback_url (docs/webhooks.md): an absolute http or https URL of
 * printable ASCII with a host and no user:password (it is stored, shown to
 * admins and written in logs). Where it points is judged later, on the
 * address actually connected to (docs/security.md), not here: a name that
 * resolves to a private address today may not tomorrow, and the reverse.
 */
static void v_callback_url(const json_t *body, json_t *out, json_t *fields)
{
    const json_t *v = json_object_get(body, "callback_url");
    if (!v || json_is_null(v))
        return;
    const char *why = NULL;
    const char *u = json_string_value(v);
    size_t n = u ? strlen(u) : 0;
    const char *host = NULL;
    if (!u)
        why = "must be a string: an http or https URL";
    else if (n == 0 || n > CALLBACK_URL_MAX)
        why = "must be 1 to 2048 characters";
    else if (strncasecmp(u, "http://", 7) == 0)
        host = u + 7;
    else if (strncasecmp(u, "https://", 8) == 0)
        host = u + 8;
    else
        why = "must be an http:// or https:// URL";
    for (size_t i = 0; !why && i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            why = "must be printable ASCII without spaces (percent-encode other characters)";
    if (!why) {
        size_t hl = strcspn(host, "/?#");
        if (hl == 0 || host[0] == ':')
            why = "must name a host";
        else if (memchr(host, '@', hl))
            why = "must not carry a user name or password";
    }
    if (why)
        json_object_set_new(fields, "callback_url", json_string(why));
    else
        json_object_set(out, "callback_url", (json_t *)v);
}

json_t *generate_body_settings(const json_t *body_in, const json_t *tpl, json_t *fields)
{
    /* "seed": null means the same as no seed: draw one. */
    json_t *body = json_copy((json_t *)body_in);
    if (json_is_null(json_object_get(body, "seed")))
        json_object_del(body, "seed");
    json_t *v = json_pack("{si si sf sI sI}", "steps", 25, "priority", 0, "guidance_scale", 7.5,
                          "width", json_integer_value(json_object_get(tpl, "width")),
                          "height", json_integer_value(json_object_get(tpl, "height")));
    json_object_set(v, "loras", json_object_get(tpl, "loras"));
    if (!json_object_get(body, "album_name"))
        json_object_set_new(fields, "album_name", json_string("is required"));
    if (!json_object_get(body, "user_theme"))
        json_object_set_new(fields, "user_theme", json_string("is required"));
    v_line(body, "album_name", 1, 200, v, fields);
    v_line(body, "user_theme", 1, 500, v, fields);
    v_integer(body, "steps", 1, 150, 1, v, fields);
    v_integer(body, "seed", 0, 2147483647, 1, v, fields);
    v_integer(body, "width", 64, 2048, 8, v, fields);
    v_integer(body, "height", 64, 2048, 8, v, fields);
    v_number(body, "guidance_scale", 0, 30, v, fields);
    v_line(body, "negative_prompt", 0, 2000, v, fields);
    v_loras(body, "loras", v, fields);
    v_integer(body, "priority", RUN_PRIORITY_MIN, RUN_PRIORITY_MAX, 1, v, fields);
    v_callback_url(body, v, fields);
    const json_t *fit = json_object_get(body, "fit");
    if (fit && !json_is_null(fit)) {
        const char *f = json_string_value(fit);
        if (f && (strcmp(f, "exact") == 0 || strcmp(f, "crop") == 0))
            json_object_set_new(v, "fit", json_string(f));
        else
            json_object_set_new(fields, "fit", json_string("must be \"exact\" or \"crop\""));
    }
    json_decref(body);
    return v;
}

json_t *generate_plan(const json_t *tpl, const json_t *v, const long long *seed, size_t limit)
{
    const json_t *items = json_object_get(tpl, "csv_items");
    const char *theme = json_string_value(json_object_get(v, "user_theme"));
    char *negative = join_negative(json_string_value(json_object_get(v, "negative_prompt")),
                                   json_string_value(json_object_get(tpl, "negative_prompt")));
    json_int_t width = json_integer_value(json_object_get(v, "width"));
    json_int_t height = json_integer_value(json_object_get(v, "height"));
    size_t n = json_array_size(items);
    if (limit < n)
        n = limit;
    json_t *neg = json_string(negative); /* one string shared by every item */
    free(negative);
    json_t *plan = json_array();
    for (size_t i = 0; i < n; i++) {
        char *prompt = item_prompt(tpl, json_array_get(items, i), theme);
        json_array_append_new(plan, json_pack("{sI ss sO so sI sI}", "index", (json_int_t)i,
                                              "prompt", prompt, "negative_prompt", neg,
                                              "seed", seed ? json_integer(run_item_seed(*seed, (long long)i))
                                                           : json_null(),
                                              "width", width, "height", height));
        free(prompt);
    }
    json_decref(neg);
    return plan;
}

/*
 * What generate and preview both check before anything else: the template
 * exists (404) and the body is a valid generate request for it (400 naming
 * every bad field, or the template when it has no items). On SF_OK, *tpl
 * (with items) and *v (generate_body_settings) are new references.
 */
static sf_status generate_request(struct sf_request *req, struct sf_response *res, json_t **tpl,
                                  json_t **v)
{
    long long tid = req->ids[0];
    sf_status st = templates_get(tid, TEMPLATE_WITH_ITEMS, tpl);
    if (st != SF_OK)
        return res_fail(res, st, "batch template %lld not found", tid);
    json_t *fields = json_object();
    *v = generate_body_settings(req->json, *tpl, fields);
    if (json_object_get(*v, "callback_url") && !*req->cfg->webhook_secret)
        json_object_set_new(fields, "callback_url",
                            json_string("webhooks are off on this server: it has no "
                                        "webhook_secret to sign them with (docs/webhooks.md)"));
    if (json_object_size(fields) == 0 && json_array_size(json_object_get(*tpl, "csv_items")) == 0)
        json_object_set_new(fields, "template", json_string("has no items to generate"));
    if (json_object_size(fields)) {
        json_decref(*v);
        json_decref(*tpl);
        return res_invalid_fields(res, fields, "invalid generate request");
    }
    json_decref(fields);
    /* Anyone may put their run behind others; only an admin ahead. */
    if (json_integer_value(json_object_get(*v, "priority")) > 0 && !req->is_admin) {
        json_decref(*v);
        json_decref(*tpl);
        return res_fail(res, req->authenticated ? SF_EFORBIDDEN : SF_EUNAUTH,
                        "a priority above 0 needs an admin token");
    }
    return SF_OK;
}

/* Sentences about the sizes some endpoint will not return as asked
 * (docs/api.md) for the settings v: a new array, maybe empty. */
static json_t *size_warnings(const json_t *v)
{
    const char *fit = json_string_value(json_object_get(v, "fit"));
    return engine_size_warnings((int)json_integer_value(json_object_get(v, "width")),
                                (int)json_integer_value(json_object_get(v, "height")),
                                fit && strcmp(fit, "crop") == 0);
}

/* ?limit= of preview: 1..100 items, default 8; larger is clamped to 100
 * (as per_page is), anything else not an integer >= 1 is a 400. */
static sf_status preview_limit(struct sf_request *req, struct sf_response *res, size_t *out)
{
    const char *s = req_query(req, "limit");
    *out = 8;
    if (!s)
        return SF_OK;
    size_t n = 0, digits = 0;
    for (const char *p = s; *p; p++, digits++) {
        if (*p < '0' || *p > '9' || digits >= 9)
            return res_invalid(res, json_pack("{ss}", "limit", "must be an integer from 1 to 100"),
                               "invalid preview limit \"%.40s\"", s);
        n = n * 10 + (size_t)(*p - '0');
    }
    if (n < 1)
        return res_invalid(res, json_pack("{ss}", "limit", "must be an integer from 1 to 100"),
                           "invalid preview limit \"%.40s\"", s);
    *out = n > 100 ? 100 : n;
    return SF_OK;
}

sf_status preview_run(struct sf_request *req, struct sf_response *res)
{
    size_t limit;
    json_t *tpl, *v;
    sf_status st = preview_limit(req, res, &limit);
    if (st == SF_OK)
        st = generate_request(req, res, &tpl, &v);
    if (st != SF_OK)
        return st;
    long long seed = json_integer_value(json_object_get(v, "seed"));
    json_t *plan = generate_plan(tpl, v, json_object_get(v, "seed") ? &seed : NULL, limit);
    json_t *doc = json_pack("{sIso}", "total", (json_int_t)json_array_size(json_object_get(tpl, "csv_items")),
                            "items", plan);
    json_t *warnings = size_warnings(v);
    if (json_array_size(warnings))
        json_object_set_new(doc, "warnings", warnings); /* as generate's answer would have */
    else
        json_decref(warnings);
    json_decref(v);
    json_decref(tpl);
    return res_json(res, 200, doc);
}

sf_status generate_run(struct sf_request *req, struct sf_response *res)
{
    sf_status st = generate_admit_call(req, res);
    if (st != SF_OK)
        return st;
    long long tid = req->ids[0];
    json_t *tpl, *v;
    if ((st = generate_request(req, res, &tpl, &v)) != SF_OK)
        return st;
    json_t *items = json_object_get(tpl, "csv_items");
    struct run_caps caps;
    struct generate_ticket ticket;
    if ((st = generate_admit_items(req, res, (long long)json_array_size(items), &caps, &ticket)) != SF_OK) {
        json_decref(v);
        json_decref(tpl);
        return st;
    }

    long long seed;
    if (json_object_get(v, "seed")) {
        seed = json_integer_value(json_object_get(v, "seed"));
    } else {
        unsigned int r = 0;
        random_bytes(&r, sizeof(r));
        seed = r & 0x7fffffff;
    }
    const char *theme = json_string_value(json_object_get(v, "user_theme"));
    json_t *plan = generate_plan(tpl, v, &seed, json_array_size(items));
    char *negative = join_negative(json_string_value(json_object_get(v, "negative_prompt")),
                                   json_string_value(json_object_get(tpl, "negative_prompt")));
    char hash[65];
    char *hashed = xasprintf("%lld\n%.*s", tid, (int)req->body_len, req->body ? req->body : "");
    sha256_hex(hashed, strlen(hashed), hash);
    free(hashed);
    const char *key = req_header(req, "Idempotency-Key");

    struct run_spec spec = {
        .template_id = tid,
        .album_name = json_string_value(json_object_get(v, "album_name")),
        .user_theme = theme,
        .steps = (int)json_integer_value(json_object_get(v, "steps")),
        .seed = seed,
        .width = (int)json_integer_value(json_object_get(v, "width")),
        .height = (int)json_integer_value(json_object_get(v, "height")),
        .guidance_scale = json_number_value(json_object_get(v, "guidance_scale")),
        .negative_prompt = negative,
        .loras = json_object_get(v, "loras"),
        .items = plan,
        .idempotency_key = key && *key ? key : NULL,
        .request_hash = hash,
        .creator = req->authenticated ? req->token_name : NULL,
        .priority = (int)json_integer_value(json_object_get(v, "priority")),
        .callback_url = json_string_value(json_object_get(v, "callback_url")),
        .fit = json_string_value(json_object_get(v, "fit")),
    };
    json_t *warnings = size_warnings(v);
    long long run_id = 0;
    int reused = 0;
    st = runs_create(&spec, &caps, &run_id, &reused);
    free(negative);
    json_decref(plan);
    json_decref(v);
    json_decref(tpl);
    if (st != SF_OK)
        json_decref(warnings);
    if (st != SF_OK || reused)
        generate_give_back(req, &ticket); /* no new items were queued */
    if (st == SF_EQUEUEFULL || st == SF_ERATELIMIT)
        return generate_refused(req, res, st, &caps);
    if (st == SF_ECONFLICT)
        return res_fail(res, st, "Idempotency-Key was already used with a different request");
    if (st != SF_OK)
        return res_fail(res, st, "cannot create the run");
    if (!reused)
        engine_kick();

    json_t *run, *summary;
    if ((st = runs_get(run_id, READ_ALL, eta_parallelism(), &run)) != SF_OK) {
        json_decref(warnings);
        return res_fail(res, st, "cannot read the new run back");
    }
    if ((st = template_summary(tid, &summary)) != SF_OK) {
        json_decref(run);
        json_decref(warnings);
        return res_fail(res, st, "batch template %lld not found", tid);
    }
    res_header(res, "Location", "/api/runs/%lld", run_id);
    json_t *doc = json_pack("{so so ss}", "run", run, "template", summary, "message",
                            reused ? "run already created for this Idempotency-Key" : "run queued");
    /* Sizes some endpoint will not return as asked (docs/api.md). */
    if (json_array_size(warnings))
        json_object_set_new(doc, "warnings", warnings);
    else
        json_decref(warnings);
    return res_json(res, 202, doc);
}

/* ---- reading runs ---------------------------------------------------------- */

/*
 * Error texts are written for the operator (endpoint URLs, file paths on
 * the machine); non-admins read them with those replaced (util/redact.h).
 * o is a run, an item or an event's data; changed in place.
 */
static void redact_errors(json_t *o, enum read_scope scope)
{
    static const char *const keys[] = {"error", "error_message", "last_error"};
    if (scope == READ_ALL || !json_is_object(o))
        return;
    for (size_t k = 0; k < 3; k++) {
        const char *text = json_string_value(json_object_get(o, keys[k]));
        if (!text)
            continue;
        char *clean = redact_internal(text);
        json_object_set_new(o, keys[k], json_string(clean));
        free(clean);
    }
    /* A run's webhook: its URL may carry a token of the receiver's in its
     * path or query, so only admins see it (docs/webhooks.md), and the
     * attempts' errors are redacted like every other error text. */
    json_t *hook = json_object_get(o, "webhook");
    if (json_is_object(hook)) {
        json_object_del(hook, "url");
        redact_errors(hook, scope);
        size_t i;
        json_t *entry;
        json_array_foreach(json_object_get(hook, "attempts_log"), i, entry) redact_errors(entry, scope);
    }
}

static void redact_each(json_t *rows, enum read_scope scope)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) redact_errors(row, scope);
}

static sf_status status_filter(struct sf_request *req, struct sf_response *res, const char **out)
{
    const char *status = req_query(req, "status");
    *out = NULL;
    if (!status)
        return SF_OK;
    enum run_state state;
    if (run_state_parse(status, &state) == 0) {
        *out = run_state_name(state);
        return SF_OK;
    }
    return res_invalid(res,
                       json_pack("{ss}", "status",
                                 "must be queued, running, paused, completed, failed or canceled"),
                       "unknown run status \"%s\"", status);
}

static sf_status list_runs_of(struct sf_request *req, struct sf_response *res, long long tid,
                              json_t *doc)
{
    struct page pg;
    const char *status;
    sf_status st = req_page(req, res, &pg);
    if (st == SF_OK)
        st = status_filter(req, res, &status);
    if (st != SF_OK) {
        json_decref(doc);
        return st;
    }
    json_t *rows;
    long long total;
    if ((st = runs_list(&pg, req_scope(req), tid, status, &rows, &total)) != SF_OK) {
        json_decref(doc);
        return res_fail(res, st, "cannot list runs");
    }
    redact_each(rows, req_scope(req));
    json_object_set_new(doc, "runs", rows);
    page_annotate(doc, &pg, total);
    return res_json(res, 200, doc);
}

sf_status list_runs(struct sf_request *req, struct sf_response *res)
{
    return list_runs_of(req, res, 0, json_object());
}

sf_status list_template_runs(struct sf_request *req, struct sf_response *res)
{
    json_t *tpl;
    sf_status st = template_summary(req->ids[0], &tpl);
    if (st != SF_OK)
        return res_fail(res, st, "batch template %lld not found", req->ids[0]);
    return list_runs_of(req, res, req->ids[0], json_pack("{so}", "template", tpl));
}

sf_status get_run(struct sf_request *req, struct sf_response *res)
{
    json_t *run;
    sf_status st = runs_get(req->ids[0], req_scope(req), eta_parallelism(), &run);
    if (st != SF_OK)
        return res_fail(res, st, "run %lld not found", req->ids[0]);
    redact_errors(run, req_scope(req));
    return res_json(res, 200, run);
}

sf_status get_template_run(struct sf_request *req, struct sf_response *res)
{
    json_t *run, *tpl;
    sf_status st = runs_get(req->ids[1], req_scope(req), eta_parallelism(), &run);
    if (st != SF_OK)
        return res_fail(res, st, "run %lld not found", req->ids[1]);
    if (json_integer_value(json_object_get(run, "template_id")) != req->ids[0]) {
        json_decref(run);
        return res_fail(res, SF_ENOTFOUND, "run %lld is not a run of batch template %lld",
                        req->ids[1], req->ids[0]);
    }
    if ((st = template_summary(req->ids[0], &tpl)) != SF_OK) {
        json_decref(run);
        return res_fail(res, st, "batch template %lld not found", req->ids[0]);
    }
    redact_errors(run, req_scope(req));
    return res_json(res, 200, json_pack("{soso}", "run", run, "template", tpl));
}

sf_status list_run_items(struct sf_request *req, struct sf_response *res)
{
    struct page pg;
    sf_status st = req_page(req, res, &pg);
    if (st != SF_OK)
        return st;
    json_t *rows;
    long long total;
    if ((st = runs_items(req->ids[0], req_scope(req), &pg, &rows, &total)) != SF_OK)
        return res_fail(res, st, "run %lld not found", req->ids[0]);
    redact_each(rows, req_scope(req));
    json_t *doc = json_pack("{sIso}", "run_id", (json_int_t)req->ids[0], "items", rows);
    page_annotate(doc, &pg, total);
    return res_json(res, 200, doc);
}

/* ---- cancel and retry -------------------------------------------------------- */

static sf_status respond_run(struct sf_response *res, long long id, const char *message)
{
    json_t *run;
    sf_status st = runs_get(id, READ_ALL, eta_parallelism(), &run);
    if (st != SF_OK)
        return res_fail(res, st, "run %lld not found", id);
    return res_json(res, 200, json_pack("{soss}", "run", run, "message", message));
}

sf_status cancel_run(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    sf_status st = queue_cancel_run(id);
    if (st == SF_ECONFLICT)
        return res_fail(res, st, "run %lld has already finished", id);
    if (st != SF_OK)
        return res_fail(res, st, "run %lld not found", id);
    engine_cancel_run(id); /* interrupts its items and wakes its streams */
    return respond_run(res, id, "run canceled");
}

sf_status retry_run(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    sf_status st = queue_retry_run(id);
    if (st == SF_ECONFLICT)
        return res_fail(res, st, "run %lld has no failed or canceled items to retry", id);
    if (st != SF_OK)
        return res_fail(res, st, "run %lld not found", id);
    engine_run_requeued(id);
    return respond_run(res, id, "failed and canceled items queued again");
}

/* ---- pause, resume, priority (docs/run-controls.md) ---------------------------- */

/* The answer to a run-wide change: the run, or 404, or 409 naming the
 * state it is in. */
static sf_status changed_run(struct sf_response *res, long long id, sf_status st,
                             const char *conflict, const char *message)
{
    json_t *run;
    if (st == SF_ECONFLICT && runs_get(id, READ_ALL, 0, &run) == SF_OK) {
        st = res_fail(res, SF_ECONFLICT, "run %lld is %s: %s", id,
                      json_string_value(json_object_get(run, "status")), conflict);
        json_decref(run);
        return st;
    }
    if (st == SF_ECONFLICT)
        return res_fail(res, st, "run %lld: %s", id, conflict);
    if (st == SF_ENOTFOUND)
        return res_fail(res, st, "run %lld not found", id);
    if (st != SF_OK)
        return res_fail(res, st, "cannot change run %lld now", id);
    engine_run_changed(id);
    return respond_run(res, id, message);
}

sf_status pause_run(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    return changed_run(res, id, queue_pause_run(id), "only a queued or running run can be paused",
                       "run paused; items being drawn finish, nothing more is claimed");
}

sf_status resume_run(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    return changed_run(res, id, queue_resume_run(id), "only a paused run can be resumed",
                       "run resumed");
}

sf_status update_run(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    json_t *fields = json_object(), *v = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(req->json, key, value) {
        if (strcmp(key, "priority") != 0)
            json_object_set_new(fields, key, json_string("cannot be changed; only priority can"));
    }
    if (!json_object_get(req->json, "priority"))
        json_object_set_new(fields, "priority", json_string("is required"));
    v_integer(req->json, "priority", RUN_PRIORITY_MIN, RUN_PRIORITY_MAX, 1, v, fields);
    int priority = (int)json_integer_value(json_object_get(v, "priority"));
    json_decref(v);
    if (json_object_size(fields))
        return res_invalid_fields(res, fields, "invalid run update");
    json_decref(fields);
    return changed_run(res, id, queue_set_priority(id, priority),
                       "a finished run has no priority to change", "run updated");
}

/* ---- the event stream -------------------------------------------------------- */

struct sse_stream {
    long long run_id;
    long long last_id;
    unsigned long long live_seq; /* the last step publication sent (queue/live.h) */
    int steps;                   /* the client asked for step events (?steps=1) */
    enum read_scope scope;
    int started;
};

struct sse_out {
    struct strbuf *out;
    enum read_scope scope;
};

static void sse_event(void *ctx, long long id, const char *type, const char *data)
{
    struct sse_out *o = ctx;
    char *clean = NULL;
    if (o->scope != READ_ALL && (strstr(data, "\"error\":\"") || strstr(data, "\"error_message\":\""))) {
        json_t *doc = json_loads(data, 0, NULL);
        redact_errors(doc, o->scope);
        clean = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
        json_decref(doc);
    }
    sb_printf(o->out, "id: %lld\nevent: %s\ndata: %s\n\n", id, type, clean ? clean : data);
    free(clean);
}

/*
 * A step event (docs/live.md): no id line, because it is not in run_events
 * and a reconnecting client cannot be given it again; the preview URL
 * changes with every new preview, so a page's <img> reloads it. Runs
 * under the live store's lock: it only writes into the buffer.
 */
static void sse_step(void *ctx, const struct live_view *v)
{
    struct strbuf *out = ctx;
    char preview[128] = "null";
    if (v->preview_version)
        snprintf(preview, sizeof preview, "\"/api/runs/%lld/items/%d/preview?v=%llu\"", v->run_id,
                 v->index, v->preview_version);
    json_t *name = json_string(v->endpoint);
    char *ename = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
    sb_printf(out,
              "event: step\ndata: {\"run_id\":%lld,\"index\":%d,\"endpoint\":%s,\"step\":%d,"
              "\"steps\":%d,\"preview\":%s}\n\n",
              v->run_id, v->index, ename ? ename : "null", v->step, v->steps, preview);
    free(ename);
    json_decref(name);
}

/* The stream's producer (res_stream): the run's events after the last one
 * sent, the steps of its items being drawn, then the end once the run is
 * final and everything is out. */
static enum stream_fill sse_fill(void *ctx, struct strbuf *out, int idle)
{
    struct sse_stream *s = ctx;
    if (!s->started) {
        s->started = 1;
        sb_puts(out, "retry: 2000\n\n");
    }
    if (idle)
        sb_puts(out, ": heartbeat\n\n");
    if (!runs_exists(s->run_id, s->scope))
        return STREAM_END; /* its album was made private, or the run deleted */
    struct sse_out o = {out, s->scope};
    if (runs_events(s->run_id, &s->last_id, 64, sse_event, &o) > 0)
        return STREAM_DATA;
    if (s->steps && live_steps_since(s->run_id, &s->live_seq, sse_step, out) > 0)
        return STREAM_DATA;
    /* Everything up to the final status has been sent (one snapshot). */
    if (runs_is_final(s->run_id, s->last_id))
        return STREAM_END;
    return out->len ? STREAM_DATA : STREAM_WAIT;
}

sf_status stream_run_events(struct sf_request *req, struct sf_response *res)
{
    if (!runs_exists(req->ids[0], req_scope(req)))
        return res_fail(res, SF_ENOTFOUND, "run %lld not found", req->ids[0]);
    struct sse_stream *s = xcalloc(1, sizeof(*s));
    s->run_id = req->ids[0];
    s->scope = req_scope(req);
    const char *last = req_header(req, "Last-Event-ID");
    if (!last)
        last = req_query(req, "last_event_id");
    if (last)
        s->last_id = strtoll(last, NULL, 10);
    if (s->last_id < 0)
        s->last_id = 0;
    /* Step events are asked for: a client written before them (one that
     * takes every event for a stored one with an id) sees the same stream
     * as before (docs/live.md). */
    const char *steps = req_query(req, "steps");
    s->steps = steps && (strcmp(steps, "1") == 0 || strcmp(steps, "true") == 0);
    return res_stream(req, res, s->run_id, "text/event-stream", sse_fill, s, free);
}

/* ---- the live preview (docs/live.md) ------------------------------------------ */

/* The content types a preview may be served as (res_body wants a static
 * string); anything else a server sent goes out as bytes. */
static const char *preview_type(const char *mime)
{
    static const char *const known[] = {"image/jpeg", "image/png", "image/webp", "image/gif"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(mime, known[i]) == 0)
            return known[i];
    return "application/octet-stream";
}

sf_status get_run_item_preview(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    long long index = req->ids[1];
    /* The run's visibility rule, as for its other reads (docs/visibility.md). */
    if (!runs_exists(id, req_scope(req)))
        return res_fail(res, SF_ENOTFOUND, "run %lld not found", id);
    unsigned char *bytes = NULL;
    size_t len = 0;
    char mime[32] = "";
    if (index > 0x7fffffff ||
        !live_preview(id, (int)index, &bytes, &len, mime, sizeof mime))
        return res_fail(res, SF_ENOTFOUND,
                        "item %lld of run %lld has no preview (it is not being drawn, or its "
                        "server has sent none yet)",
                        index, id);
    res_header(res, "Cache-Control", "no-store");
    return res_body(res, 200, preview_type(mime), (char *)bytes, len);
}

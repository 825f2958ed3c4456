/*
 * app.c: what the HTTP server asks of the application around each handler
 * (struct sf_app in http/http.h): token checks, the read snapshot of a
 * GET, and the data generation that keeps cached answers honest. It lives
 * here so that http/ knows no store.
 */
#include "api/api.h"

#include <stdio.h>

#include "store/db.h"
#include "store/tokens.h"

enum read_scope req_scope(const struct sf_request *req)
{
    return req->is_admin ? READ_ALL : READ_PUBLIC;
}

static sf_status authenticate(struct sf_request *req, const char *token)
{
    struct sf_token t;
    sf_status st = tokens_verify(token, &t);
    if (st != SF_OK)
        return st;
    req->authenticated = true;
    req->is_admin = t.is_admin != 0;
    req->token_id = t.id;
    snprintf(req->token_name, sizeof(req->token_name), "%s", t.name);
    return SF_OK;
}

static int thread_ready(void)
{
    return db_conn() ? 0 : -1;
}

static int begin_read(void)
{
    return db_begin_read() == SF_OK;
}

static void end_request(int snapshot)
{
    if (snapshot)
        db_commit();
    db_rollback(); /* a handler that failed mid-transaction leaves nothing open */
}

const struct sf_app sf_api_app = {
    .thread_ready = thread_ready,
    .authenticate = authenticate,
    .begin_read = begin_read,
    .end_request = end_request,
    .generation = db_generation,
};

/*
 * status.h: the daemon's internal result codes.
 *
 * Every layer below HTTP (store, validation, queue) reports failure as an
 * sf_status, never as an HTTP number. The one place that turns an sf_status
 * into an HTTP status and an error slug is status.c, so that a store function
 * saying "not found" reads the same to every route.
 */
#ifndef SF_STATUS_H
#define SF_STATUS_H

typedef enum sf_status {
    SF_OK = 0,
    SF_EINVAL,       /* 400: malformed input, a field is invalid */
    SF_EUNAUTH,      /* 401: no or unknown credentials */
    SF_EFORBIDDEN,   /* 403: authenticated but not allowed */
    SF_ENOTFOUND,    /* 404: unknown id or path */
    SF_EMETHOD,      /* 405: known path, wrong method */
    SF_ECONFLICT,    /* 409: the state forbids it */
    SF_ETOOLARGE,    /* 413: body over the limit */
    SF_EURITOOLONG,  /* 414: the URL (its query) is too long */
    SF_EMEDIATYPE,   /* 415: wrong content type */
    SF_ERATELIMIT,   /* 429: too many requests */
    SF_EINTERNAL,    /* 500: a bug or an I/O failure */
    SF_ENOTIMPL,     /* 501: a transfer coding we do not implement */
    SF_EUNAVAILABLE, /* 503: shutting down, out of resources */
    SF_EQUEUEFULL,   /* 503: the queue holds all the items it may */
    SF_STATUS_COUNT
} sf_status;

/* The HTTP status code for st (200 for SF_OK). */
int sf_status_http(sf_status st);

/* A stable lowercase slug for st, sent as the "code" of error bodies. */
const char *sf_status_slug(sf_status st);

#endif

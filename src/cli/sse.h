/*
 * sse.h: a push parser of Server-Sent Events (the WHATWG event-stream
 * format), for the client's `generate --wait`.
 *
 * Bytes are fed as the HTTP client hands them over, cut anywhere (a chunk
 * may end inside a line, inside a CRLF); each complete event (a block ended
 * by an empty line) is handed to the callback with its type ("message" when
 * it names none), its data lines joined with "\n" and its id. Comments
 * (": heartbeat") and "retry:" are skipped. It knows nothing of runs: what
 * an event means is the caller's business.
 */
#ifndef SF_CLI_SSE_H
#define SF_CLI_SSE_H

#include <stddef.h>

#include "util/xalloc.h"

/* type and data are borrowed for the duration of the call; id is the last
 * "id:" seen on this stream (0 when none yet). */
typedef void (*sse_event_fn)(void *ud, const char *type, const char *data, long long id);

struct sse_parser {
    struct strbuf line;  /* the line being read */
    struct strbuf data;  /* the event's data lines so far */
    char type[64];       /* the event's type so far; "" for "message" */
    int has_data;
    int skip_lf;         /* the last byte was a CR: a following LF is part of it */
    long long last_id;
    sse_event_fn on_event;
    void *ud;
};

void sse_init(struct sse_parser *p, sse_event_fn on_event, void *ud);
void sse_feed(struct sse_parser *p, const char *bytes, size_t n);
void sse_free(struct sse_parser *p);

#endif

/*
 * sse.c: the event-stream push parser (see sse.h). Lines end in LF, CRLF or
 * CR; a CR at the end of one chunk and an LF at the start of the next are one
 * line end, which is what skip_lf remembers across feeds.
 */
#include "cli/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sse_init(struct sse_parser *p, sse_event_fn on_event, void *ud)
{
    memset(p, 0, sizeof *p);
    sb_init(&p->line);
    sb_init(&p->data);
    p->on_event = on_event;
    p->ud = ud;
}

void sse_free(struct sse_parser *p)
{
    sb_free(&p->line);
    sb_free(&p->data);
}

static void dispatch(struct sse_parser *p)
{
    if (p->has_data)
        p->on_event(p->ud, p->type[0] ? p->type : "message", p->data.data ? p->data.data : "",
                    p->last_id);
    p->data.len = 0;
    if (p->data.data)
        p->data.data[0] = '\0';
    p->type[0] = '\0';
    p->has_data = 0;
}

static void take_line(struct sse_parser *p)
{
    const char *l = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
    if (n == 0) {
        dispatch(p);
        return;
    }
    if (l[0] == ':')
        return; /* a comment: the heartbeat */
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    if (*v == ' ')
        v++;
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        if (p->has_data)
            sb_putc(&p->data, '\n');
        sb_puts(&p->data, v);
        p->has_data = 1;
    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        snprintf(p->type, sizeof p->type, "%s", v);
    } else if (flen == 2 && memcmp(l, "id", 2) == 0) {
        char *end;
        long long id = strtoll(v, &end, 10);
        if (end != v && *end == '\0')
            p->last_id = id;
    }
}

void sse_feed(struct sse_parser *p, const char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = bytes[i];
        if (p->skip_lf) {
            p->skip_lf = 0;
            if (c == '\n')
                continue;
        }
        if (c == '\r' || c == '\n') {
            take_line(p); /* a strbuf is always NUL-terminated */
            p->line.len = 0;
            p->skip_lf = c == '\r';
            continue;
        }
        sb_putc(&p->line, c);
    }
}

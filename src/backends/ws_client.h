/*
 * ws_client.h: a websocket client (RFC 6455) for reading a server's event
 * feed: ComfyUI's /ws, which tells a prompt's steps, previews and end
 * (docs/live.md).
 *
 * The socket is opened by the daemon's one HTTP client
 * (http_client_connect: its timeouts, guard and TLS), the upgrade request
 * is written here and the answer's Sec-WebSocket-Accept checked against
 * the key sent, and the frames are read and written by libwslay (Debian's
 * libwslay-dev): masking, fragments, ping/pong and close are its business,
 * not ours. One connection belongs to one thread at a time.
 */
#ifndef SF_WS_CLIENT_H
#define SF_WS_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>

#include "backends/http_client.h"

struct ws_client;

enum ws_kind { WS_TEXT = 1, WS_BINARY = 2 };

struct ws_message {
    enum ws_kind kind;
    unsigned char *data; /* malloc'd (the caller frees), NUL-terminated after len */
    size_t len;
};

/*
 * Opens base_url (http:// or https://, no trailing slash) + path (e.g.
 * "/ws?clientId=...") as a websocket within timeout_ms. HTTP_ANSWERED with
 * *out, or a failure with err; a server that answers the upgrade with
 * anything but 101 and the right accept key is HTTP_ANSWERED's opposite:
 * HTTP_PERMANENT, with the status in err (a ComfyUI without /ws: 404).
 */
enum http_outcome ws_open(const char *base_url, const char *path, long timeout_ms,
                          atomic_int *cancel, const char *who, struct ws_client **out,
                          char *err, size_t errlen);

/* The next message, waiting up to wait_ms: 1 with *m, 0 when none came in
 * time, -1 when the connection closed or broke (err says why). Answers
 * pings meanwhile. Messages larger than max_bytes end the connection. */
int ws_next(struct ws_client *c, int wait_ms, struct ws_message *m, char *err, size_t errlen);

/* Closes (a close frame if it can be sent at once) and frees; NULL: no-op. */
void ws_close(struct ws_client *c);

/* Sec-WebSocket-Accept for key (RFC 6455 4.2.2), into out (29 bytes). */
void ws_accept_key(const char *key, char out[29]);

#endif

/*
 * stream.h: the server's side of streaming responses (stream.c); handlers
 * use res_stream() from http.h, the application stream_notify() from
 * server.h.
 */
#ifndef SF_STREAM_H
#define SF_STREAM_H

#include "http/http.h"
#include "http/server.h"

/* Starts the thread that wakes quiet streams for their heartbeat. 0 or -1. */
int stream_ticker_start(void);

/* Ends every stream (they finish instead of waiting) and stops the ticker. */
void stream_close_all(void);

/* Streams open now. */
int stream_count(void);

#endif

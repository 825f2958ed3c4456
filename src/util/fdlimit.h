/*
 * fdlimit.h: the file descriptor budget.
 *
 * Every HTTP connection costs a descriptor (two while it is sent an image
 * file), and so does every SQLite connection (three: the database, its WAL
 * and its shared memory), every backend socket and every image being
 * stored. With the common soft limit of 1024 and a default conn_limit of
 * 1024, a flood of idle connections used to leave nothing for the rest, and
 * the first thread that then needed a database connection aborted the
 * daemon. At start the daemon raises its soft limit to the hard one and
 * keeps conn_limit within what is left after a reserve for everything else.
 */
#ifndef SF_FDLIMIT_H
#define SF_FDLIMIT_H

/* Raises the soft RLIMIT_NOFILE to the hard limit. Returns the soft limit
 * now in force (the old one when it cannot be raised); *before gets the old
 * one. */
long fd_limit_raise(long *before);

/* Descriptors the daemon needs besides its HTTP connections, for http_threads
 * pool threads and workers worker slots (each with its finisher). */
long fd_reserve(long http_threads, long workers);

/* The most connections that fit in limit descriptors after reserve, each
 * counted twice (its socket and a file being sent); at least 8, at most
 * wanted. */
long fd_conn_limit(long limit, long reserve, long wanted);

#endif

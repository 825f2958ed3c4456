/*
 * tokens.h: API tokens. Only a token's SHA-256 is stored; the secret is
 * shown once, when it is created.
 */
#ifndef SF_TOKENS_H
#define SF_TOKENS_H

#include "util/status.h"

#define TOKEN_SECRET_LEN 67 /* "sf_" + 64 hex digits */

struct sf_token {
    long long id;
    char name[128];
    int is_admin;
};

/* Creates a token; secret_out gets "sf_<64 hex>" (NUL-terminated). */
sf_status tokens_create(const char *name, int is_admin,
                        char secret_out[TOKEN_SECRET_LEN + 1], long long *id_out);

/* SF_OK and *out filled for a live token; SF_EUNAUTH otherwise. */
sf_status tokens_verify(const char *presented, struct sf_token *out);

/* Marks a token revoked. SF_ENOTFOUND for an unknown or revoked id. */
sf_status tokens_revoke(long long id);

/* A token as listed (strings borrowed for the callback; revoked_at "" when
 * live). Never the secret: only its hash is stored. */
struct sf_token_row {
    long long id;
    int is_admin;
    const char *name, *created_at, *revoked_at;
};

/* Calls fn for every token, oldest first. */
sf_status tokens_each(void (*fn)(void *ctx, const struct sf_token_row *t), void *ctx);

/* Number of tokens ever created (revoked ones included). */
long long tokens_count(void);

#endif

/*
 * stdwebhook.h: the parts of Standard Webhooks 1.0 that setforge speaks as
 * a sender, as pure functions: the secret's format, the signature, the
 * message id, and the retry schedule.
 *
 * The specification (standardwebhooks.com) signs "<webhook-id>.<webhook-
 * timestamp>.<body>" with HMAC-SHA256, keyed by the base64-decoded part of
 * a "whsec_<base64>" secret, and sends "v1,<base64 of the MAC>" in the
 * webhook-signature header. Nothing here does I/O, so the signature is
 * checked against a vector made by the reference library and the schedule
 * against its bounds (tests/unit/test_stdwebhook.c); the delivery thread
 * (queue/webhook_sender.c) puts them together. docs/webhooks.md.
 */
#ifndef SF_STDWEBHOOK_H
#define SF_STDWEBHOOK_H

#include <stddef.h>
#include <stdint.h>

/* A secret's key is 24 to 64 bytes, as the specification recommends. */
#define STDWEBHOOK_KEY_MIN 24
#define STDWEBHOOK_KEY_MAX 64
/* "v1," and the base64 of 32 bytes, and a NUL. */
#define STDWEBHOOK_SIG_LEN 48
/* "msg_" and 32 hex digits, and a NUL. */
#define STDWEBHOOK_ID_LEN 37

/*
 * Decodes "whsec_<base64>" into key (at least STDWEBHOOK_KEY_MAX bytes):
 * the number of key bytes, or -1 with a reason in why that never quotes
 * the secret (it ends up in logs and error messages).
 */
int stdwebhook_key(const char *secret, unsigned char *key, char *why, size_t whylen);

/* The config check of the webhook_secret setting: "" (webhooks off) or a
 * secret stdwebhook_key accepts. 0, or -1 with why. */
int stdwebhook_check_secret(const char *value, char *why, size_t whylen);

/* "v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>" into out. */
void stdwebhook_sign(const unsigned char *key, size_t keylen, const char *id,
                     long long timestamp, const char *body, size_t body_len,
                     char out[STDWEBHOOK_SIG_LEN]);

/* A new message id, "msg_" and 32 random hex digits (libuuid). */
void stdwebhook_new_id(char out[STDWEBHOOK_ID_LEN]);

/*
 * The wait after the failed attempt number `failed` (1, 2, ...): full
 * jitter over an exponential ceiling, r * min(cap_ms, base_ms * 2^(failed-1))
 * with r drawn from [0, 1) by the caller (so the function is pure). Full
 * jitter spreads the retries of many deliveries that failed together (a
 * receiver that was down) instead of sending them back in waves.
 */
int64_t stdwebhook_backoff_ms(int64_t base_ms, int64_t cap_ms, int failed, double r);

#endif

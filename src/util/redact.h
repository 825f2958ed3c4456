/*
 * redact.h: error texts fit for the public.
 *
 * An item's error is written for the operator: it names the endpoint's URL
 * ("http://10.0.0.5:7860/sdapi/v1/txt2img: connection refused") and files
 * on the machine ("cannot create a temporary file in /srv/setforge/data/...").
 * Anyone may read runs, so what non-admins see has URLs and absolute paths
 * replaced by "<url>" and "<path>"; admins keep the whole text.
 */
#ifndef SF_REDACT_H
#define SF_REDACT_H

/* A malloc'd copy of s with every URL (scheme://...) replaced by "<url>"
 * and every absolute path (a "/" or "~/" that starts a word) by "<path>";
 * NULL for NULL. */
char *redact_internal(const char *s);

#endif

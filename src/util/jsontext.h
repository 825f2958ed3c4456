/*
 * jsontext.h: writing JSON text straight into a buffer.
 *
 * The hot read routes (a template with its items) serve JSON that is mostly
 * stored JSON columns. Parsing those into jansson trees only to print them
 * again dominated the cost of a request (allocation churn), so those routes
 * splice the stored text and escape the few scalar fields with these helpers.
 */
#ifndef SF_JSONTEXT_H
#define SF_JSONTEXT_H

#include "util/xalloc.h"

/* Appends s as a JSON string literal (quotes and escapes; s is UTF-8). */
void jt_str(struct strbuf *sb, const char *s);
/* Appends "key": with a leading comma unless first. */
void jt_key(struct strbuf *sb, const char *key, int first);

#endif

/*
 * placeholder.h: `{column}` placeholders in a template's prompt_template.
 *
 * A placeholder is `{name}` where name (trimmed of surrounding spaces) is a
 * CSV column or `theme`. `{{` and `}}` are literal braces, as in Python's
 * str.format, which the original system used. A `{` with no closing `}` is
 * kept as a literal character.
 */
#ifndef SF_PLACEHOLDER_H
#define SF_PLACEHOLDER_H

#include <jansson.h>
#include <stddef.h>

#include "util/status.h"

/*
 * SF_OK when every placeholder in tmpl names a column of `columns` (borrowed
 * array of strings) or `theme`. Otherwise SF_EINVAL, and err holds a sentence
 * naming every unknown placeholder once, in order of appearance, e.g.
 * "unknown placeholders {colour}, {size}; columns are: rank, suit".
 */
sf_status placeholders_check(const char *tmpl, const json_t *columns,
                             char *err, size_t errlen);

/*
 * Returns a new malloc'd string: tmpl with each {column} replaced by the
 * item's value (borrowed object; a missing key gives ""), {theme} by theme,
 * and {{ }} by single braces.
 */
char *placeholders_render(const char *tmpl, const json_t *item,
                          const char *theme);

#endif

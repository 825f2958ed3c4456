/*
 * bodies.h: what the handlers that take a JSON body check in it, as
 * functions of the body alone (and of the row it changes), so that the
 * checks can run without a request or a database: the handlers call them,
 * and so does tests/fuzz/fuzz_body.c.
 *
 * Each runs every check of its body (api/validate.h), records a sentence
 * under each bad key in fields (a JSON object; the handler fails once with
 * all of them, res_invalid_fields), and writes what is valid, normalised,
 * into the row or settings it returns. body is borrowed.
 */
#ifndef SF_BODIES_H
#define SF_BODIES_H

#include <jansson.h>
#include <stddef.h>

/*
 * templates.c: the template row a create (current NULL: the defaults) or an
 * update (current borrowed: the stored row) makes of body, with its csv or
 * csv_items imported and the placeholders of its prompt_template checked
 * against the columns. Returns a new reference.
 */
json_t *template_body_row(const json_t *body, const json_t *current, json_t *fields);

/*
 * runs.c: the settings of a generate request: album_name, user_theme,
 * steps, seed (absent when null or not given: drawn later), width, height,
 * guidance_scale, negative_prompt and loras, over the defaults and the
 * template's (tpl borrowed: its width, height and loras). Returns a new
 * reference.
 */
json_t *generate_body_settings(const json_t *body, const json_t *tpl, json_t *fields);

/*
 * runs.c: the items of a run exactly as generate stores them, the first
 * limit of them: [{"index", "prompt", "negative_prompt", "seed", "width",
 * "height"}], item i's prompt by the contract's rule and its seed
 * run_item_seed(*seed, i) (null when seed is NULL: generate draws it). Generate stores
 * what this returns and preview answers it, so a preview cannot differ
 * from the run. tpl (with csv_items) and v (generate_body_settings) are
 * borrowed. Returns a new reference.
 */
json_t *generate_plan(const json_t *tpl, const json_t *v, const long long *seed, size_t limit);

/* albums.c: name, description and is_public of body over row (borrowed,
 * changed); on ALBUM_NEW, name is required. */
enum album_check { ALBUM_NEW, ALBUM_CHANGE };
void album_body_fields(const json_t *body, json_t *row, enum album_check what, json_t *fields);

#endif

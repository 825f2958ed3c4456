/*
 * scope.h: what a read may show.
 *
 * Privacy is a property of albums. An admin sees everything; anyone else
 * (anonymous, or a non-admin token) sees, through READ_PUBLIC:
 *   - a run when it has no album yet (it is being drawn) or its album is
 *     public;
 *   - an image when it belongs to at least one public album, or to a run
 *     that is visible by the rule above;
 *   - an album when it is public.
 * The rule is written once, as the views public_runs and public_images
 * (sql/002_visibility.sql), and every store read of runs and images that
 * takes a read_scope goes through them. docs/visibility.md says why.
 */
#ifndef SF_SCOPE_H
#define SF_SCOPE_H

enum read_scope { READ_PUBLIC, READ_ALL };

/* SQL conditions for a statement whose parameter ?n is 1 for READ_ALL. */
#define SQL_RUN_VISIBLE(n, id_col) \
    "(?" #n " OR EXISTS (SELECT 1 FROM public_runs pr WHERE pr.id = " id_col "))"
#define SQL_IMAGE_VISIBLE(n, id_col) \
    "(?" #n " OR EXISTS (SELECT 1 FROM public_images pi WHERE pi.id = " id_col "))"

#endif

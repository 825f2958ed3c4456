/*
 * settings.h: switches an operator flips at run time that must outlive the
 * process (today: the queue-wide pause), kept as rows of the meta table.
 *
 * Why the database and not a file or the config: the flag must change in
 * the same place the queue lives, so a backup or a copy of the database
 * carries it, and a restart reads it back with everything else
 * (docs/run-controls.md).
 */
#ifndef SF_STORE_SETTINGS_H
#define SF_STORE_SETTINGS_H

#include "util/status.h"

/* The meta row of the queue-wide pause. */
#define SETTING_QUEUE_PAUSED "queue_paused"

/* *on = 1 when the flag's row exists. */
sf_status settings_flag(const char *key, int *on);

/* Sets (on) or clears the flag; one statement, durable when it returns. */
sf_status settings_set_flag(const char *key, int on);

#endif

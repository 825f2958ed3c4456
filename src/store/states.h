/*
 * states.h: the life of a run item and of a run, named once.
 *
 * In beanstalkd's words: an item is queued (ready), then running (reserved,
 * with a lease the engine's heartbeat extends), then succeeded, failed or
 * canceled; a failed or canceled item can be queued again (retry, "kick").
 * A run is queued until its first item is claimed, running until every item
 * has settled, then completed (at least one image), failed (none) or
 * canceled. An operator may pause a queued or running run: its queued
 * items are not claimed until it is resumed (back to running, or queued if
 * nothing was ever claimed); paused is not final, and a paused run whose
 * last items settle ends like any other (docs/run-controls.md). The names
 * are what the database stores and the API shows; the code compares the
 * enums. Transitions are the verbs of queue/queue.h.
 */
#ifndef SF_STATES_H
#define SF_STATES_H

enum item_state { ITEM_QUEUED, ITEM_RUNNING, ITEM_SUCCEEDED, ITEM_FAILED, ITEM_CANCELED };
#define ITEM_NSTATES 5

enum run_state { RUN_QUEUED, RUN_RUNNING, RUN_COMPLETED, RUN_FAILED, RUN_CANCELED, RUN_PAUSED };
#define RUN_NSTATES 6

/* The stored name of a state ("queued", ...). */
const char *item_state_name(enum item_state s);
const char *run_state_name(enum run_state s);

/* Reads a stored name: 0 and *out set, or -1 for an unknown name. */
int item_state_parse(const char *name, enum item_state *out);
int run_state_parse(const char *name, enum run_state *out);

/* 1 for completed, failed and canceled: nothing more will happen unless
 * an operator retries. */
int run_state_is_final(enum run_state s);

#endif

/*
 * examples.h: seeding the example templates (playing cards, tarot, zodiac).
 */
#ifndef SF_EXAMPLES_H
#define SF_EXAMPLES_H

#include "util/status.h"

/* Seeds the examples unless this database already had them once; *seeded
 * tells whether it did so now. */
sf_status examples_seed(int *seeded);

#endif

/*
 * setforge.h: facts about the daemon as a whole.
 */
#ifndef SETFORGE_H
#define SETFORGE_H

#define SETFORGE_VERSION "0.1.0"

#endif

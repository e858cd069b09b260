/*
 * util.h — small helpers shared by the engine's files, and the internal
 * layer (allocation hooks, random generator) it shares with the backends.
 */
#ifndef SR_UTIL_H
#define SR_UTIL_H

#include "internal/alloc.h"
#include "internal/rand.h"
#include "internal/ring.h"

#define SR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SR_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif

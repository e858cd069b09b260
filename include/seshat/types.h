/*
 * seshat/types.h — basic types, error codes and allocator hooks shared by
 * the engine and every backend.
 *
 * Everything here is plain data.  No function declared in this header keeps
 * state between calls, and none may fail except as documented.
 */
#ifndef SESHAT_TYPES_H
#define SESHAT_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SR_BUILDING_LIBRARY) && defined(__GNUC__)
#define SR_API __attribute__((visibility("default")))
#else
#define SR_API
#endif

#define SR_VERSION_MAJOR 0
#define SR_VERSION_MINOR 1
#define SR_VERSION_PATCH 0

typedef uint64_t sr_term;
typedef uint64_t sr_index;
typedef uint64_t sr_id; /* node id; 0 means "none" */

/*
 * Error codes.  Every function that can fail returns 0 or one of these
 * (always negative).  sr_strerror() names them.
 */
enum {
	SR_OK = 0,
	SR_ENOMEM = -1,	       /* an allocation failed */
	SR_EINVAL = -2,	       /* an argument is out of range */
	SR_ENOTLEADER = -3,    /* not the leader (see sr_status.leader) */
	SR_EBUSY = -4,	       /* backpressure: retry later */
	SR_ESHUTDOWN = -5,     /* the node is stopping or has stopped */
	SR_EUNKNOWN = -6,      /* outcome unknown: may or may not be applied */
	SR_EDROPPED = -7,      /* overwritten: will never be applied */
	SR_EIO = -8,	       /* an I/O error the backend cannot recover */
	SR_ENOSPC = -9,	       /* no space left on the device */
	SR_ECORRUPT = -10,     /* stored or received data failed a check */
	SR_ESTATE = -11,       /* the call is not valid in the current state */
	SR_ETOOBIG = -12,      /* a payload exceeds a configured limit */
	SR_ENOTFOUND = -13,    /* an index, node or file that does not exist */
	SR_EPROTO = -14,       /* a malformed frame or message */
	SR_ELOCKED = -15,      /* the resource is held by another process */
	SR_ETRANSFER = -16,    /* a leadership transfer is in progress */
	SR_ECONFPENDING = -17, /* a configuration change is already in flight */
	SR_ENOQUORUM = -18,    /* unused: no call returns it (kept for ABI) */
	SR_ETIMEOUT = -19,     /* the operation did not finish in time */
	SR_ECOMPACTED = -20,   /* the requested entries were compacted away */
	SR_EEXIST = -21,       /* the node id or file exists already */
	SR_ERRNO_LAST = -21
};

/* Name of an error code; never NULL (unknown codes give "unknown error"). */
SR_API const char *sr_strerror(int err);

/*
 * CRC32C (Castagnoli) of len bytes, continuing from crc (start with 0).
 * Uses the CPU's instruction where present.  Every record on disk and every
 * frame on the wire is checked with it.
 */
SR_API uint32_t sr_crc32c(uint32_t crc, const void *data, size_t len);

/*
 * Allocator hooks.  Every allocation of the engine and of the backends goes
 * through these.  A NULL hooks pointer (or NULL functions) means libc.
 * The hooks may be called from any function of the engine, never
 * concurrently for the same node.  Backends with threads state in their own
 * header whether they call the hooks from another thread.
 */
typedef struct sr_alloc {
	void *(*malloc)(void *ctx, size_t size);
	void *(*realloc)(void *ctx, void *ptr, size_t size);
	void (*free)(void *ctx, void *ptr);
	void *ctx;
} sr_alloc;

/* Log levels for the log hook. */
enum { SR_LOG_DEBUG = 0, SR_LOG_INFO = 1, SR_LOG_WARN = 2, SR_LOG_ERROR = 3 };

/*
 * Log hook: receives one formatted line (no trailing newline) with its
 * level.  It must not call back into the library.
 */
typedef void (*sr_log_fn)(void *ctx, int level, const char *line);

/*
 * A log entry.  `data` is borrowed: it is valid only for the duration of
 * the call that hands the entry over, unless that call's documentation
 * says otherwise.
 */
enum {
	SR_ENTRY_NORMAL = 1, /* a command for the state machine */
	SR_ENTRY_NOOP = 2,   /* appended by every new leader (Raft §5.4.2) */
	SR_ENTRY_CONFIG =
		3 /* a membership configuration (sr_membership encoded) */
};

typedef struct sr_entry {
	sr_term term;
	sr_index index;
	uint32_t type;
	uint32_t len;
	const void *data;
} sr_entry;

/* Members of a configuration. */
enum {
	SR_ROLE_VOTER = 1,
	SR_ROLE_LEARNER = 2,
	SR_ROLE_REMOVED = 3 /* kept so that its id is never reused */
};

#define SR_ADDR_MAX    128
#define SR_MAX_MEMBERS 64 /* voters + learners + removed ids */

typedef struct sr_member {
	sr_id id;
	uint32_t role;
	uint32_t auto_promote;	/* learner: promote once caught up */
	char addr[SR_ADDR_MAX]; /* opaque to the engine, NUL-terminated */
	/* 0, except in a joint configuration (thesis §4.3, sr_node_change()):
	 * there `role` is the member's role in the configuration being left
	 * (C_old; a member the change adds is a learner there) and new_role
	 * its role in the one being entered (C_new).  Every member of a
	 * joint configuration has a new_role; decisions need a majority of
	 * the voters of each. */
	uint32_t new_role;
} sr_member;

typedef struct sr_membership {
	uint32_t n;
	sr_member members[SR_MAX_MEMBERS];
} sr_membership;

#ifdef __cplusplus
}
#endif
#endif

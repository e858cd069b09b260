/*
 * seshat/msg.h — the messages Raft engines exchange.
 *
 * The engine hands a message to the transport's send() and the host hands
 * received messages to sr_node_step().  Pointers inside a message (entries,
 * entry data, snapshot chunk bytes) are borrowed for the duration of that
 * call only: a transport serializes or copies before send() returns, and the
 * engine copies what it keeps before sr_node_step() returns.
 *
 * The wire encoding of these structures lives in seshat/codec.h.
 */
#ifndef SESHAT_MSG_H
#define SESHAT_MSG_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
	SR_MSG_VOTE = 1, /* RequestVote or PreVote (§5.2, thesis §9.6) */
	SR_MSG_VOTE_RESP = 2,
	SR_MSG_APPEND = 3, /* AppendEntries; a heartbeat has no entries */
	SR_MSG_APPEND_RESP = 4,
	SR_MSG_SNAPSHOT = 5, /* one chunk of InstallSnapshot */
	SR_MSG_SNAPSHOT_RESP = 6,
	SR_MSG_TIMEOUT_NOW = 7, /* leadership transfer (thesis §3.10) */
	SR_MSG_READ_INDEX = 8, /* a follower asks the leader for a read index */
	SR_MSG_READ_INDEX_RESP = 9,
	SR_MSG_TYPE_MAX = 9
};

typedef struct sr_msg_vote {
	sr_index last_index;
	sr_term last_term;
	uint8_t pre; /* a PreVote: term is the term the sender would take */
	uint8_t transfer; /* campaign started by a leadership transfer */
} sr_msg_vote;

typedef struct sr_msg_vote_resp {
	uint8_t granted;
	uint8_t pre;
} sr_msg_vote_resp;

typedef struct sr_msg_append {
	sr_index prev_index;
	sr_term prev_term;
	sr_index commit;
	uint64_t seq; /* leader's heartbeat round, echoed in the response */
	const sr_entry *entries;
	uint32_t n_entries;
} sr_msg_append;

typedef struct sr_msg_append_resp {
	uint8_t success;
	/* success: the highest index the follower holds durably that matches
	 * the leader's log.  rejection: the prev_index that was rejected. */
	sr_index index;
	/* on rejection, a hint for the next probe: the follower's last index
	 * with a term <= hint_term (fast back-off, skipping a whole term).
	 * on success, hint_index is the last index the follower holds that
	 * matches the leader, durable or not (so the leader does not resend
	 * what is only waiting for the follower's disk). */
	sr_index hint_index;
	sr_term hint_term;
	uint64_t seq; /* the seq of the append being answered */
} sr_msg_append_resp;

typedef struct sr_msg_snapshot {
	sr_index last_index; /* last index covered by the snapshot */
	sr_term last_term;
	uint64_t offset; /* byte offset of this chunk in the snapshot */
	uint64_t total;	 /* snapshot size in bytes; 0: unknown (the engine
			    ends a transfer with `done`) */
	uint8_t done;	 /* the last chunk */
	/* the encoded membership at last_index (in the chunk at offset 0) */
	const void *conf;
	uint32_t conf_len;
	const void *data; /* chunk bytes */
	uint32_t len;
} sr_msg_snapshot;

typedef struct sr_msg_snapshot_resp {
	sr_index last_index; /* the snapshot being answered */
	uint64_t offset;     /* next offset the follower expects */
	uint8_t done;	     /* installed */
	uint8_t rejected;    /* restart from offset 0 */
} sr_msg_snapshot_resp;

typedef struct sr_msg_read_index {
	uint64_t ctx; /* the asker's cookie, echoed */
} sr_msg_read_index;

typedef struct sr_msg_read_index_resp {
	uint64_t ctx;
	sr_index index;
	int32_t status; /* 0 or a negative SR_E* code */
} sr_msg_read_index_resp;

typedef struct sr_msg {
	uint32_t type;
	uint32_t group; /* Raft group id, for many groups sharing one transport */
	sr_id from;
	sr_id to;
	sr_term term;
	union {
		sr_msg_vote vote;
		sr_msg_vote_resp vote_resp;
		sr_msg_append append;
		sr_msg_append_resp append_resp;
		sr_msg_snapshot snapshot;
		sr_msg_snapshot_resp snapshot_resp;
		sr_msg_read_index read_index;
		sr_msg_read_index_resp read_index_resp;
	} u;
} sr_msg;

/* Name of a message type, for logs ("append", "vote", ...). */
SR_API const char *sr_msg_type_name(uint32_t type);

#ifdef __cplusplus
}
#endif
#endif

/*
 * conn.h — what server.c (client connections), limits.c (what a
 * connection may cost) and requests.c (requests waiting for the engine)
 * share.  Private to those files.
 */
#ifndef KVNODE_CONN_H
#define KVNODE_CONN_H

#include "kvnode.h"

#define KV_MAX_PENDING 1024 /* requests in flight per connection */
#define KV_OUT_HIGH    (4u * 1024 * 1024) /* unsent output that pauses reading */
#define KV_PUMP_SHARE  (256u * 1024) /* reads evaluated per pump, in bytes */

enum { LIST_NONE = 0, LIST_WAITING = 1, LIST_ORPHANS = 2 };

struct kv_req {
	struct kv_req *next;	      /* in the connection's FIFO */
	struct kv_req *lprev, *lnext; /* in the waiting or orphans list */
	struct kv_conn *conn;	      /* NULL once orphaned */
	struct kv_group *g;	      /* the group it waits for */
	unsigned slot;		      /* its key's slot, for MOVED */
	uint64_t deadline;
	uint64_t batch_end; /* last entry of write batch number N; 0: not */
	int kind;
	uint8_t ready; /* the reply is known (or the read may be evaluated) */
	uint8_t held;  /* the batch or the engine holds it */
	uint8_t eval;  /* a read to evaluate when it reaches the head */
	uint8_t list;
	uint8_t silent;	   /* CLIENT REPLY OFF/SKIP: the reply is dropped */
	uint8_t queued;	   /* buf is a reply counted in conn->queued */
	uint8_t resp3;	   /* asked under HELLO 3: nulls become "_" */
	struct kv_buf buf; /* the reply, or the encoded read arguments */
};

struct kv_conn {
	struct kv_conn *prev, *next;   /* every connection */
	struct kv_conn *dnext;	       /* the dirty list */
	struct kv_conn *aprev, *anext; /* by last activity (server.c) */
	struct kv_conn *hprev, *hnext; /* over the soft output limit */
	struct kv_server *s;
	int fd;
	uint64_t id;
	struct kv_buf in;
	struct kv_parser parser;
	struct kv_buf out;
	size_t out_off;
	size_t queued; /* ready replies waiting in the FIFO, in bytes */
	size_t share;  /* reads evaluated since the last flush, in bytes */
	struct kv_req *head, *tail;
	uint32_t npending;
	uint8_t dirty;	 /* on the dirty list */
	uint8_t closing; /* close once the output is flushed */
	uint8_t eof;	 /* the client half-closed */
	uint8_t paused;	 /* reading stopped (backpressure) */
	uint8_t killed;	 /* over a limit: close at the next flush */
	uint8_t heavy;	 /* on the heavy list, since soft_ms */
	uint64_t soft_ms;
	uint64_t active_ms; /* last byte read or written */
	int interest;
	uint8_t reply_mode; /* KV_REPLY_ON/OFF/SKIP (CLIENT REPLY) */
	uint64_t created_ms;
	char name[64];		 /* CLIENT SETNAME */
	struct kv_txn *txn;	 /* MULTI/WATCH state (multi.c), or NULL */
	struct kv_group *wgroup; /* the group of its last write (WAIT) */
	uint8_t authed;		 /* AUTH succeeded (auth.c) */
	uint8_t resp3;		 /* HELLO 3 (auth.c): replies in RESP3 */
};

static inline size_t kv_conn_unsent(const struct kv_conn *c)
{
	return c->out.len - c->out_off;
}

/* Unsent replies and ready replies waiting in the FIFO: what the output
 * limits measure. */
static inline size_t kv_conn_output(const struct kv_conn *c)
{
	return kv_conn_unsent(c) + c->queued;
}

/* server.c: append a request to the connection's FIFO; move answered
 * requests at the head of the FIFO to the output; queue c for the
 * deferred flush; "host:port" of a socket's peer (or its own address). */
struct kv_req *kv_req_new(struct kv_conn *c, int kind);
void kv_conn_pump(struct kv_conn *c);
void kv_conn_mark_dirty(struct kv_conn *c);
void kv_sock_name(int fd, int peer, char *out, size_t cap);

/* limits.c: c read or wrote (kv_conn_touch), its output grew (check the
 * limits: 1 if c is now being disconnected) or shrank, it is closing;
 * disconnect c at the next flush; the periodic check. */
void kv_conn_touch(struct kv_conn *c);
int kv_conn_out_check(struct kv_conn *c);
void kv_conn_out_drained(struct kv_conn *c);
void kv_conn_forget(struct kv_conn *c);
void kv_conn_kill(struct kv_conn *c);
int kv_limits_start(struct kv_server *s);
void kv_limits_stop(struct kv_server *s);

/* requests.c: the connection lets go of a request (answered, or the
 * client went away); start the periodic timeout sweep. */
void kv_req_orphan(struct kv_server *s, struct kv_req *r);
int kv_req_sweep_start(struct kv_server *s);
/* requests.c: a holder other than the engine (wait.c) lets go; frees r
 * if its connection left. */
void kv_req_unhold(struct kv_server *s, struct kv_req *r);

#endif

/*
 * conn.h — what server.c (client connections) and requests.c (requests
 * waiting for the engine) share.  Private to those two files.
 */
#ifndef KVNODE_CONN_H
#define KVNODE_CONN_H

#include "kvnode.h"

#define KV_MAX_PENDING 1024 /* requests in flight per connection */
#define KV_OUT_HIGH    (4u * 1024 * 1024) /* unsent output that pauses reading */

enum { LIST_NONE = 0, LIST_WAITING = 1, LIST_ORPHANS = 2 };

struct kv_req {
	struct kv_req *next;	      /* in the connection's FIFO */
	struct kv_req *lprev, *lnext; /* in the waiting or orphans list */
	struct kv_conn *conn;	      /* NULL once orphaned */
	uint64_t deadline;
	int kind;
	uint8_t ready; /* the reply is known (or the read may be evaluated) */
	uint8_t held;  /* the batch or the engine holds it */
	uint8_t eval;  /* a read to evaluate when it reaches the head */
	uint8_t list;
	uint8_t silent;	   /* CLIENT REPLY OFF/SKIP: the reply is dropped */
	uint8_t resp3;	   /* asked under HELLO 3: nulls become "_" */
	struct kv_buf buf; /* the reply, or the encoded read arguments */
};

struct kv_conn {
	struct kv_conn *prev, *next; /* every connection */
	struct kv_conn *dnext;	     /* the dirty list */
	struct kv_server *s;
	int fd;
	uint64_t id;
	struct kv_buf in;
	struct kv_parser parser;
	struct kv_buf out;
	size_t out_off;
	struct kv_req *head, *tail;
	uint32_t npending;
	uint8_t dirty;	 /* on the dirty list */
	uint8_t closing; /* close once the output is flushed */
	uint8_t eof;	 /* the client half-closed */
	uint8_t paused;	 /* reading stopped (backpressure) */
	int interest;
	uint8_t reply_mode; /* KV_REPLY_ON/OFF/SKIP (CLIENT REPLY) */
	uint64_t created_ms;
	char name[64];	    /* CLIENT SETNAME */
	struct kv_txn *txn; /* MULTI/WATCH state (multi.c), or NULL */
	uint8_t authed;	    /* AUTH succeeded (auth.c) */
	uint8_t resp3;	    /* HELLO 3 (auth.c): replies in RESP3 */
};

/* server.c: append a request to the connection's FIFO; move answered
 * requests at the head of the FIFO to the output. */
struct kv_req *kv_req_new(struct kv_conn *c, int kind);
void kv_conn_pump(struct kv_conn *c);

/* requests.c: the connection lets go of a request (answered, or the
 * client went away); start the periodic timeout sweep. */
void kv_req_orphan(struct kv_server *s, struct kv_req *r);
int kv_req_sweep_start(struct kv_server *s);
/* requests.c: a holder other than the engine (wait.c) lets go; frees r
 * if its connection left. */
void kv_req_unhold(struct kv_server *s, struct kv_req *r);

#endif

/*
 * tcp_int.h — private state of the TCP transport, shared by its files
 * (listed with their layers at the declarations below).
 *
 * Ownership: the sr_tcp owns its peers (array of pointers) and its
 * accepted connections (a doubly linked list).  A peer owns its outgoing
 * socket and send queue.  An accepted connection owns its socket and
 * receive buffer; once its handshake succeeded it names its peer by id
 * and the peer points back at it (peer->in), so that at most one accepted
 * connection per peer is live.
 */
#ifndef TCP_INT_H
#define TCP_INT_H

#include "seshat/codec.h"
#include "seshat/loop.h"
#include "seshat/tcp.h"
#include "tcp_auth.h"

#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Send queue: allocated for a connect (the hello), first allocation for
 * messages, and the size above which a drained queue is freed. */
#define TCP_QUEUE_HELLO	      4096u
#define TCP_QUEUE_INIT	      (64u << 10)
#define TCP_QUEUE_KEEP	      (1u << 20)
/* Receive buffer after the handshake, and the size above which an idle
 * one shrinks back. */
#define TCP_RBUF_INIT	      (64u << 10)
#define TCP_RBUF_KEEP	      (1u << 20)
/* Fairness between connections within one loop iteration. */
#define TCP_READS_PER_EVENT   16
#define TCP_ACCEPTS_PER_EVENT 64
/* A connection that lived this long resets the backoff. */
#define TCP_UP_RESET_MS	      1000
/* What the last frame of a send queue is, for batching. */
#define TCP_LAST_NONE	      0
#define TCP_LAST_MSG	      1
#define TCP_LAST_BATCH	      2
#define TCP_LAST_COALESCED    3 /* a coalesced frame that may grow */

struct tcp_in;

/* A peer and its outgoing connection. */
struct tcp_peer {
	sr_tcp *tcp;
	sr_id id;
	char addr[SR_ADDR_MAX];
	int state; /* SR_TCP_DOWN, SR_TCP_CONNECTING, SR_TCP_UP */
	int fd;	   /* -1 when down */
	int cut;   /* sr_tcp_partition() */
	int dirty; /* has output for the deferred flush */

	/* Send queue: encoded frames back to back in q[head, tail).
	 * `scan` is the start of the first frame not completely written;
	 * q_msgs counts the messages (not the hello) from scan to tail.
	 * The last frame, at q_last, may still grow while no byte of the
	 * queue has been written since it was started (q_last_kind: none,
	 * a message frame a second message turns into a batch, an
	 * unsealed batch, or an unsealed coalesced frame); the next write
	 * seals it first. */
	uint8_t *q;
	size_t q_head, q_tail, q_cap, q_scan, q_last;
	uint32_t q_msgs;
	int q_last_kind; /* TCP_LAST_* */

	uint64_t retry_at;	   /* DOWN: when to connect again */
	uint64_t connect_deadline; /* CONNECTING: give up at */
	uint64_t up_since;
	uint32_t attempts;
	uint64_t drops;

	struct tcp_in *in;	  /* the live accepted connection from it */
	struct tcp_auth_out auth; /* tcp_auth.c, while connecting */
};

/* An accepted (receive-only) connection. */
struct tcp_in {
	struct tcp_in *prev, *next;
	sr_tcp *tcp;
	int fd;
	sr_id peer;	   /* 0 until the handshake is accepted */
	uint64_t deadline; /* handshake deadline */
	uint8_t *buf;
	size_t len, cap;
	uint32_t features; /* SR_FEATURE_* its handshake offered */
	int busy;	   /* inside a read callback: freeing is deferred */
	int closing;	   /* closed; freed when no longer busy */
	char name[64];	   /* remote address, for logs */
	struct tcp_auth_in auth; /* tcp_auth.c, until bound */
};

struct sr_tcp {
	sr_tcp_config cfg;
	char listen_addr[SR_ADDR_MAX];
	char advertise[SR_ADDR_MAX]; /* sent in every hello */
	sr_loop *loop;
	int own_loop;
	int lfd; /* listener, -1 if none */
	int port;
	uint64_t accept_resume; /* accept paused (EMFILE) until then; 0: not */

	struct tcp_peer **peers;
	size_t n_peers, cap_peers;
	struct tcp_in *ins;
	uint32_t n_in;

	sr_decoder dec;
	uint32_t batch_max;	   /* batch payload limit in effect; 0: off */
	uint32_t coalesce_max;	   /* coalesced frame payload limit; 0: off */
	uint64_t timer_id;	   /* 0: none armed */
	sr_loop_timer_fn on_timer; /* tcp.c's deadline handler */
	uint64_t timer_when;
	int flush_pending;
	int corked; /* sr_tcp_cork(): queue, write nothing */
	uint64_t rng;
	sr_tcp_stats st;
	struct tcp_auth auth; /* tcp_auth.c */
};

/*
 * The files below tcp.c, lowest first.  Each calls only the ones above it
 * in this list (and sha256.c, tcp_auth_wire.c, the loop and the codec):
 *
 *   tcp_addr.c      address strings: check, resolve, print
 *   tcp_base.c      the log line, buffer accounting, peer lookups
 *   tcp_queue.c     a peer's send queue
 *   tcp_link.c      closing either kind of connection, the backoff, the
 *                   identity checks of a hello, the deadline timer
 *   tcp_auth.c      the authenticated handshake, both sides
 *   tcp_coalesce.c  coalesced heartbeats and answers, both directions
 *   tcp_out.c       outgoing connections and the peer table
 *   tcp_in.c        the listener and accepted connections
 *   tcp.c           the public sr_tcp_* API, the send path, the timer's
 *                   handler
 */

/* tcp_addr.c */
/* 0 if addr is "host:port" or "[v6]:port" with a port up to 65535, else
 * SR_EINVAL. */
int tcp_addr_check(const char *addr);
/* Resolve addr (blocking for names; numeric hosts do not block); passive:
 * for bind(), "" and "*" meaning any.  0 or SR_EINVAL. */
int tcp_addr_resolve(const char *addr, int passive, struct addrinfo **out);
/* "ip:port" or "[ip6]:port" of sa into buf, for logs. */
void tcp_addr_name(const struct sockaddr_storage *sa, char *buf, size_t cap);

/* tcp_base.c */
void tcp_log(sr_tcp *t, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* realloc and free through the hooks, keeping buffer_bytes current. */
void *tcp_realloc(sr_tcp *t, void *p, size_t old, size_t size);
void tcp_free(sr_tcp *t, void *p, size_t size);
struct tcp_peer *tcp_peer_find(const sr_tcp *t, sr_id id);
/* The SR_FEATURE_* bits this node's handshakes offer. */
uint32_t tcp_features(const sr_tcp *t);

/* tcp_queue.c */
/* Room for n more bytes at the tail of p's queue (0, SR_EBUSY, or
 * SR_ENOMEM); the queue may move. */
int tcp_queue_reserve(sr_tcp *t, struct tcp_peer *p, size_t n);
/* Seal the last frame of p's queue before any of it is written. */
void tcp_queue_seal(struct tcp_peer *p);
/* Advance q_scan over the frames written completely, counting their
 * messages off q_msgs. */
void tcp_queue_written(struct tcp_peer *p);
/* Drop what is queued (counting the messages) and free the buffer. */
void tcp_queue_reset(sr_tcp *t, struct tcp_peer *p);

/* tcp_link.c */
/* Arm the one timer for the earliest deadline (t->on_timer runs then). */
void tcp_timer_arm(sr_tcp *t);
/* Close p's outgoing connection (reason logged unless NULL), drop its
 * queue and schedule the reconnect. */
void tcp_peer_close(sr_tcp *t, struct tcp_peer *p, int level,
		    const char *reason);
/* Close accepted connection c; freed now, or by tcp_in.c once its read
 * callback unwinds (c->busy). */
void tcp_in_close(sr_tcp *t, struct tcp_in *c, int level, const char *reason);
void tcp_in_free(sr_tcp *t, struct tcp_in *c);
/* The identity checks of a hello (cluster, receiver, known sender, cut):
 * 0, or the connection is refused (closed) and -1. */
int tcp_hello_check(sr_tcp *t, struct tcp_in *c, const sr_hello *h);

/* tcp_auth.c */
int tcp_auth_check_config(const sr_tcp_config *c);
int tcp_auth_init(sr_tcp *t);
void tcp_auth_free(sr_tcp *t);
/* A frame on an accepted connection before it is bound, when it is not
 * a plain hello to a node without a secret: 1 when it completed the
 * handshake (a verified proof; the hello is in *out, for the caller to
 * check and bind), else 0 (waiting for the proof, or c was closed). */
int tcp_auth_in_frame(sr_tcp *t, struct tcp_in *c, const uint8_t *f, size_t len,
		      uint32_t type, sr_hello *out);
/* The connector closed the connection (err: 0 or the errno) after our
 * challenge: it refused our proof, most likely. */
void tcp_auth_in_hangup(sr_tcp *t, struct tcp_in *c, int err);
/* Connector: send the auth hello on a connected socket (0, or closed);
 * read the challenge: 1 authenticated (the proof is in the queue's
 * slot), 0 waiting, < 0 closed. */
int tcp_auth_out_start(sr_tcp *t, struct tcp_peer *p);
int tcp_auth_out_read(sr_tcp *t, struct tcp_peer *p);

/* tcp_coalesce.c */
/* Queue msg as a record of a coalesced frame if it is of a kind that
 * coalesces and the peer takes them: 1 queued, 0 not (send it as usual),
 * < 0 no room (SR_EBUSY, SR_ENOMEM). */
int tcp_coalesce_queue(sr_tcp *t, struct tcp_peer *p, const sr_msg *msg);
/* A coalesced frame (flen bytes at f) on bound connection c: check it
 * whole, then deliver its messages; a bad one closes c. */
void tcp_coalesce_deliver(sr_tcp *t, struct tcp_in *c, const uint8_t *f,
			  size_t flen);

/* tcp_out.c */
/* Connect to p if it is down and not cut. */
void tcp_out_connect(sr_tcp *t, struct tcp_peer *p);
/* Write as much of p's queue as the socket takes: 0 (all written, or
 * waiting for room) or SR_EIO (the connection was closed). */
int tcp_out_write(sr_tcp *t, struct tcp_peer *p);
/* sr_tcp_set_peer(): add peer id at addr, or move it there. */
int tcp_out_set_peer(sr_tcp *t, sr_id id, const char *addr);
/* A fresh start for p: close it (why logged), forget the backoff,
 * connect now. */
void tcp_out_restart(sr_tcp *t, struct tcp_peer *p, const char *why);

/* tcp_in.c */
int tcp_listen(sr_tcp *t, const char *addr);
/* Watch the listener again after an accept pause. */
void tcp_listen_resume(sr_tcp *t);

#endif

/*
 * seshat/tcp.h — the TCP transport (docs/wire-protocol.md).
 *
 * Connection model.  Each node listens on one socket.  For every peer it
 * keeps one outgoing connection, and messages to that peer travel only on
 * it; connections a node accepts are receive-only (it never writes to
 * them).  So between two nodes there are two connections, one per
 * direction, and neither side ever has to decide which of two crossing
 * connections to keep.  An outgoing connection starts with a handshake
 * frame (cluster id, sender id, intended receiver id); the acceptor closes
 * the connection, with a logged reason, if the cluster differs, the sender
 * is not a known peer, or the receiver id is not its own.  With a shared
 * secret (config.secret) the handshake is a mutual challenge-response
 * instead: each side proves with an HMAC over fresh nonces that it knows
 * the secret before any message crosses, and a peer that cannot is
 * refused, logged and counted (sr_tcp_auth_stats_get()).  A lost
 * outgoing connection is re-established with capped, jittered exponential
 * backoff; a valid handshake from that peer (it is back, e.g. restarted)
 * resets the backoff and reconnects at once.
 *
 * Sending.  send() encodes the message into the peer's send queue (one
 * contiguous buffer) and returns; the queue is flushed before the event
 * loop next sleeps, so every message queued during one engine call leaves
 * in one write(2) (or a few, if the socket buffer fills; partial writes
 * resume when the socket is writable).  One connection per peer carries
 * every Raft group.  When the peer's handshake offered batches
 * (SR_FEATURE_BATCH), the messages queued for it between two writes, of
 * any groups, leave as one batch frame (one header, one CRC) of at most
 * batch_max_bytes; a peer that did not offer them (batching off there, or
 * an older version) gets one frame per message.  Memory is bounded: a message that
 * would grow a queue beyond max_queue_bytes is dropped and counted, and so
 * are messages to a peer whose connection is down (waiting to reconnect).
 * When a connection is lost, what was queued for it is dropped (counted).
 * Raft resends what matters (heartbeats, flow-control probes).
 *
 * Receiving.  Each accepted connection has a receive buffer bounded by
 * max_frame_bytes plus a header.  A frame that is too large, truncated by
 * a closed connection, fails its CRC, has an unknown type or version, or
 * claims a sender other than the handshake's closes that connection with
 * a logged reason; the transport and its other connections go on.  A
 * valid message is passed to on_message().
 *
 * Event loop.  The transport runs on an sr_loop (seshat/loop.h):
 *   - a host that runs sr_loop passes it in the config, and the transport
 *     registers its sockets and timers there;
 *   - a host with a loop of its own leaves config.loop NULL: the transport
 *     makes a private loop, and the host polls sr_tcp_fd() for
 *     readability, sleeps at most sr_tcp_timeout_ms(), and calls
 *     sr_tcp_process() (non-blocking) when either fires.  After calling
 *     sr_tcp_send() (directly or through the engine) re-read
 *     sr_tcp_timeout_ms(): it is 0 while output waits to be flushed.
 * Either way everything happens on the loop's thread; no function here is
 * thread-safe.
 *
 * Addresses are "host:port" or "[ipv6]:port".  Numeric hosts are best:
 * a name is resolved with a blocking getaddrinfo() at each connect.
 */
#ifndef SESHAT_TCP_H
#define SESHAT_TCP_H

#include "loop.h"
#include "msg.h"
#include "raft.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sr_tcp sr_tcp;

/*
 * A message arrived.  msg and everything it points to are valid during
 * the call only.  Typically the host calls sr_node_step() here.  The
 * callback may call sr_tcp_send() (the engine does, while stepping),
 * sr_tcp_set_peer(), sr_tcp_remove_peer() and sr_tcp_partition(); it must
 * not call sr_tcp_destroy().
 */
typedef void (*sr_tcp_message_fn)(void *ctx, const sr_msg *msg);

typedef struct sr_tcp_config {
	sr_id id;	     /* this node (>= 1) */
	uint64_t cluster_id; /* both ends of a connection must agree */
	/* "host:port" (port 0: any); NULL: no listener */
	const char *listen_addr;
	sr_loop *loop; /* NULL: a private loop (see above) */

	sr_tcp_message_fn on_message; /* required */
	void *ctx;		      /* for on_message */

	/* Largest frame payload accepted or sent; default
	 * SR_FRAME_MAX_DEFAULT (32 MiB).  Must exceed the engine's largest
	 * message (max_msg_bytes plus one max_entry_bytes entry): give the
	 * engine sr_tcp_max_payload() as sr_config.transport_max_payload
	 * and sr_node_create() checks it. */
	uint32_t max_frame_bytes;
	uint32_t max_entries;	  /* per append; default 65536 */
	uint64_t max_queue_bytes; /* per peer send queue; default 64 MiB,
				     at least max_frame_bytes + 20 */
	uint32_t max_inbound;	  /* accepted connections; default 256 */

	uint32_t reconnect_min_ms;     /* first retry delay; default 50 */
	uint32_t reconnect_max_ms;     /* backoff cap; default 5000 */
	uint32_t handshake_timeout_ms; /* connect and handshake; default 5000 */
	/* SO_SNDBUF of outgoing sockets (the kernel doubles it); 0: the
	 * system's autotuning.  Bounds the kernel's share of a slow peer's
	 * backlog next to max_queue_bytes.  Default 0. */
	uint32_t sndbuf_bytes;
	uint32_t user_timeout_ms; /* TCP_USER_TIMEOUT on outgoing
					  sockets (unacknowledged data);
					  default 10000, 0 = system default */

	/* 1: send() writes each message at once instead of batching until
	 * the loop next sleeps (one write per message; for benchmarks and
	 * latency experiments).  Default 0. */
	int write_through;
	/* Largest batch frame payload: messages queued for one peer between
	 * two writes share one frame up to this size (a message larger than
	 * it travels alone).  Capped at max_frame_bytes.  0: no batching —
	 * this node neither offers batches in its handshake (so peers send
	 * it single frames, as to a node of an older version; a batch
	 * arriving anyway closes the connection) nor sends them.  Default
	 * 64 KiB.  A node of a version before batches refuses the
	 * handshake of one that offers them: upgrade a running cluster with
	 * 0 first (docs/wire-protocol.md, "Batch frames"). */
	uint32_t batch_max_bytes;
	/* Largest coalesced frame payload: heartbeats (appends without
	 * entries), and append answers, queued back to back for one peer
	 * between two writes travel as one compact message of 44 or 45
	 * bytes per message, sender and receiver once, up to this size;
	 * every other message closes it, so order is kept.  Capped at
	 * max_frame_bytes.  0: no coalescing — not offered in the handshake
	 * (peers send this node ordinary messages, as to an older version;
	 * a coalesced frame arriving anyway closes the connection) and none
	 * sent.  Default 64 KiB (about 1,490 heartbeats).  A node of a
	 * version before batches refuses any feature bit: see
	 * docs/wire-protocol.md, "Coalesced heartbeats". */
	uint32_t coalesce_max_bytes;

	/* The address sent in the handshake, where peers reach this node
	 * ("host:port"); NULL: listen_addr with its actual port.  Set it
	 * when listening on a wildcard address. */
	const char *advertise_addr;
	/* 1: accept connections (cluster id checked) from node ids that are
	 * not peers yet, and make each such node a peer at the address its
	 * handshake advertises — for a node that waits to be added to a
	 * cluster and must answer members it does not know yet.  The host's
	 * own sr_tcp_set_peer()/sr_tcp_remove_peer() calls still rule.
	 * Default 0. */
	int accept_unknown_peers;

	/*
	 * Peer authentication (docs/wire-protocol.md, "Authenticated
	 * handshake"): the cluster's shared secret, secret_len bytes
	 * (16..1024), the same on every node.  With it, both ends of every
	 * connection prove they know it (HMAC-SHA-256 challenge-response
	 * with fresh nonces) before any message crosses, and peers without
	 * it are refused.  NULL (the default): no authentication — anyone
	 * who can reach the port and knows the cluster id can talk Raft to
	 * this node; only for loopback demos and tests.
	 * secret_prev: a previous secret still accepted from peers during a
	 * rotation (docs/operations.md); NULL: none.  Both are copied by
	 * sr_tcp_create() and not kept.
	 */
	const void *secret;
	size_t secret_len;
	const void *secret_prev;
	size_t secret_prev_len;

	uint64_t seed; /* backoff jitter; default from the id */

	sr_log_fn log; /* may be NULL */
	void *log_ctx;
	int log_level;	       /* default SR_LOG_INFO */
	const sr_alloc *alloc; /* NULL: libc; must outlive the transport */
} sr_tcp_config;

/* Fill *cfg with the defaults above. */
SR_API void sr_tcp_config_init(sr_tcp_config *cfg, sr_id id,
			       uint64_t cluster_id);

/*
 * Create the transport and start listening (cfg is copied, listen_addr
 * and the secrets included).  Errors: SR_EINVAL (bad config or address,
 * a secret shorter than 16 or longer than 1024 bytes), SR_ENOMEM,
 * SR_EIO (socket, bind or listen failed; the reason is logged).
 */
SR_API int sr_tcp_create(const sr_tcp_config *cfg, sr_tcp **out);

/*
 * Close every connection and the listener, cancel the transport's timers
 * and free everything (queued messages are dropped).  Not from inside
 * on_message.  A shared loop stays usable.
 */
SR_API void sr_tcp_destroy(sr_tcp *tcp);

/* The port the listener is bound to (useful with port 0), or 0. */
SR_API int sr_tcp_port(const sr_tcp *tcp);

/* The largest frame payload it sends (max_frame_bytes): the value for the
 * engine's sr_config.transport_max_payload. */
SR_API uint32_t sr_tcp_max_payload(const sr_tcp *tcp);

/*
 * Add peer id at addr, or change its address.  A new peer is connected at
 * once; a changed address closes the current outgoing connection (its
 * queue is dropped) and connects to the new one.
 * Errors: SR_EINVAL (id 0 or this node, addr empty or too long),
 * SR_ENOMEM.
 */
SR_API int sr_tcp_set_peer(sr_tcp *tcp, sr_id id, const char *addr);

/*
 * Forget peer id: close its outgoing and incoming connections and drop
 * its queue.  A later handshake from it is refused.  SR_ENOTFOUND if it
 * is unknown.
 */
SR_API int sr_tcp_remove_peer(sr_tcp *tcp, sr_id id);

/*
 * Queue msg for msg->to (everything msg points to is copied before
 * returning).  Errors (each counted as a drop): SR_ENOTFOUND (unknown
 * peer), SR_EINVAL (msg cannot be encoded), SR_ETOOBIG (larger than
 * max_frame_bytes), SR_ESTATE (the peer is disconnected or partitioned),
 * SR_EBUSY (its queue is full), SR_EIO (write-through: the write failed).
 */
SR_API int sr_tcp_send(sr_tcp *tcp, const sr_msg *msg);

/* Write queued messages now instead of when the loop next sleeps. */
SR_API void sr_tcp_flush(sr_tcp *tcp);

/*
 * Cork (on != 0): from now on nothing is written to any socket (not by
 * flushes, write-through, reconnections or writable sockets); messages
 * queue as usual.  Uncork (on == 0): writing resumes with a flush.  For
 * a host that must make something durable before the messages queued
 * since may leave (seshat/wal.h, sr_wal_sync_hard_state()).  Uncork
 * before the loop sleeps: a writable socket keeps waking it meanwhile.
 */
SR_API void sr_tcp_cork(sr_tcp *tcp, int on);

/*
 * The transport vtable for sr_config.transport; its ctx
 * (sr_config.transport_ctx) is the sr_tcp *.
 */
SR_API const sr_transport_ops *sr_tcp_transport_ops(void);

/* The loop the transport runs on (the host's or its private one). */
SR_API sr_loop *sr_tcp_loop(const sr_tcp *tcp);

/*
 * For a host with its own loop: an fd that is readable when the transport
 * has work (the loop's epoll fd), the milliseconds until it needs to run
 * anyway (-1: no deadline, 0: now), and the call that does the work
 * without blocking (one sr_loop_run_once(loop, 0)).  sr_tcp_process()
 * returns the number of callbacks run or SR_EIO.
 */
SR_API int sr_tcp_fd(const sr_tcp *tcp);
SR_API int sr_tcp_timeout_ms(const sr_tcp *tcp);
SR_API int sr_tcp_process(sr_tcp *tcp);

typedef struct sr_tcp_stats {
	/* queued by send() (and written, or dropped later when the
	 * connection was lost) */
	uint64_t msgs_sent;
	uint64_t msgs_recv;  /* handed to on_message */
	uint64_t bytes_sent; /* written to sockets */
	uint64_t bytes_recv; /* read from sockets */
	uint64_t writes;     /* write(2) calls that wrote something */
	uint64_t drops;	     /* messages dropped, every reason */
	uint64_t drops_full; /* ... because a queue was full */
	/* ... because the peer was down, or queued when its connection was
	 * lost */
	uint64_t drops_down;
	uint64_t connects;     /* outgoing connections established */
	uint64_t accepts;      /* incoming connections accepted */
	uint64_t refused;      /* incoming connections refused at handshake */
	uint64_t proto_errors; /* incoming connections closed on a bad frame */
	uint64_t queued_bytes; /* in every send queue now */
	uint64_t buffer_bytes; /* queues and receive buffers allocated now */
	/* frames queued by send(): message frames plus batches (counted
	 * like msgs_sent); msgs_sent / frames_sent is the batching ratio */
	uint64_t frames_sent;
	uint64_t batched_msgs; /* of msgs_sent, those inside a batch */
	uint64_t frames_recv;  /* message and batch frames received */
	uint64_t batches_recv; /* of frames_recv, batches */
	/* coalesced frames queued by send() (also in frames_sent), the
	 * messages they carry (also in msgs_sent), and the same received
	 * (in frames_recv and msgs_recv).  On the wire a coalesced frame is
	 * one message: msgs_sent - coalesced_msgs + coalesced_sent. */
	uint64_t coalesced_sent;
	uint64_t coalesced_msgs;
	uint64_t coalesced_recv;
	uint64_t coalesced_msgs_recv;
} sr_tcp_stats;

SR_API void sr_tcp_stats_get(const sr_tcp *tcp, sr_tcp_stats *out);

/* Peer authentication counters.  Every refusal closes the connection
 * with a WARN log line naming the peer's address and the reason, and
 * counts once in failures and once in its kind. */
typedef struct sr_tcp_auth_stats {
	int enabled;	     /* a secret is configured */
	uint64_t ok;	     /* handshakes whose peer proved the secret */
	uint64_t failures;   /* refusals, every kind below */
	uint64_t bad_proof;  /* wrong MAC: wrong secret, or a replay */
	uint64_t replayed;   /* a connector nonce seen before */
	uint64_t no_auth;    /* plain hello to a node with a secret */
	uint64_t unexpected; /* auth hello to a node without one */
	uint64_t malformed;  /* undecodable or out-of-order handshake */
	/* not a refusal here: a connector hung up after our challenge,
	 * i.e. it refused our proof (a different secret there?) */
	uint64_t abandoned;
} sr_tcp_auth_stats;

/* Fill *out with the authentication counters (any thread that owns the
 * transport; not thread-safe, like every call here). */
SR_API void sr_tcp_auth_stats_get(const sr_tcp *tcp, sr_tcp_auth_stats *out);

enum { SR_TCP_DOWN = 0, SR_TCP_CONNECTING = 1, SR_TCP_UP = 2 };

typedef struct sr_tcp_peer_info {
	sr_id id;
	int state;	 /* SR_TCP_* of the outgoing connection */
	int inbound;	 /* an accepted connection from it is open */
	int partitioned; /* sr_tcp_partition() cut it */
	uint64_t queued_bytes;
	uint32_t queued_msgs;
	uint64_t drops;
	uint32_t attempts; /* failed connects since the last good one */
} sr_tcp_peer_info;

/* Fill *out for peer id; SR_ENOTFOUND if unknown. */
SR_API int sr_tcp_peer_get(const sr_tcp *tcp, sr_id id, sr_tcp_peer_info *out);

/*
 * Test hook: cut (cut=1) or heal (cut=0) the link with peer id.  Cutting
 * closes the connections in both directions as this node sees them:
 * outgoing messages are dropped, the outgoing connection is not retried,
 * and a handshake from the peer is refused.  Healing reconnects at once.
 * Cut a link on both nodes for a symmetric partition.  SR_ENOTFOUND if
 * the peer is unknown.
 */
SR_API int sr_tcp_partition(sr_tcp *tcp, sr_id id, int cut);

#ifdef __cplusplus
}
#endif
#endif

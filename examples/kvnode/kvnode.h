/*
 * kvnode.h — private declarations shared by the files of kvnode, the
 * replicated key-value server that speaks the Redis protocol.
 *
 * The program is split by concern:
 *
 *   resp.c    RESP2 request parser (multibulk and inline) and reply encoders
 *   kvmap.c   the key-value hash table (keyed SipHash, chained buckets)
 *   kvfsm.c   the replicated state machine: the log-entry encoding of write
 *             commands, apply(), and snapshot serialization / restore
 *   server.c  client connections: reading, per-connection reply ordering,
 *             backpressure (conn.h: what it shares with requests.c)
 *   requests.c requests waiting for the engine: writes batched into
 *             proposals, reads into ReadIndex rounds, completions, timeouts
 *   cmds.c    the command table and the command handlers
 *   raft.c    the engine, its storage and transport, ticks, membership
 *   cluster.c INFO, and the CLUSTER commands (membership, transfer)
 *   slots.c   the Redis Cluster protocol: slots, CLUSTER SLOTS/NODES/...,
 *             MOVED/TRYAGAIN/CLUSTERDOWN redirects
 *   multi.c   MULTI/EXEC/DISCARD/WATCH: a connection's transaction
 *   txn.c     applying a transaction entry atomically (replicated part)
 *   session.c exactly-once writes: the replicated client-session table
 *   main.c    command line, signals, start-up and shutdown
 *
 * Everything runs on one thread, the event loop's.  Names are prefixed kv_
 * so that they never collide with the library's hidden internal symbols
 * when the unit test links these files against libseshatraft.a.
 */
#ifndef KVNODE_H
#define KVNODE_H

#include <seshat/loop.h>
#include <seshat/raft.h>
#include <seshat/server.h>
#include <seshat/tcp.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ */
/* Growable byte buffer                                               */
/* ------------------------------------------------------------------ */

struct kv_buf {
	char *p;
	size_t len, cap;
};

/* Make room for `extra` more bytes; -1 on overflow or allocation failure. */
int kv_buf_reserve(struct kv_buf *b, size_t extra);
int kv_buf_put(struct kv_buf *b, const void *data, size_t len);
int kv_buf_printf(struct kv_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void kv_buf_free(struct kv_buf *b);
/* Drop the first n bytes. */
void kv_buf_consume(struct kv_buf *b, size_t n);

/* ------------------------------------------------------------------ */
/* RESP (resp.c)                                                      */
/* ------------------------------------------------------------------ */

struct kv_arg {
	size_t off; /* offset in the input buffer */
	size_t len;
};

/*
 * An incremental request parser over a connection's input buffer.  It
 * never allocates for a length a client claims: the argument vector grows
 * one argument at a time as the bytes arrive, and a bulk string is taken
 * in place once all of it is in the buffer.
 */
struct kv_parser {
	size_t max_bulk;   /* largest bulk string accepted */
	size_t max_args;   /* largest multibulk count accepted */
	size_t max_inline; /* longest inline command or length line */

	size_t start;	 /* the current command begins here */
	size_t pos;	 /* next byte to look at */
	long long nargs; /* multibulk count, -1 before the header */
	long long bulk;	 /* pending bulk length, -1 when none */
	int is_inline;
	size_t argc;
	size_t args_cap;
	struct kv_arg *args;
};

enum { KV_PARSE_MORE = 0, KV_PARSE_CMD = 1, KV_PARSE_ERR = -1 };

void kv_parser_init(struct kv_parser *p, size_t max_bulk);
void kv_parser_free(struct kv_parser *p);
/*
 * Parse the next command out of buf[0..len).  KV_PARSE_CMD: p->argc
 * arguments at p->args (offsets into buf), the command ends at p->pos and
 * the next call continues from there.  KV_PARSE_MORE: the buffer holds no
 * complete command yet.  KV_PARSE_ERR: *err says why (the connection must
 * be closed after replying).
 */
int kv_parse(struct kv_parser *p, const char *buf, size_t len,
	     const char **err);
/* The caller dropped the first n bytes of the buffer (n <= p->start). */
void kv_parser_shift(struct kv_parser *p, size_t n);
/* Bytes of the buffer that belong to commands already returned. */
static inline size_t kv_parser_done_bytes(const struct kv_parser *p)
{
	return p->start;
}

int kv_reply_simple(struct kv_buf *b, const char *s); /* +s */
int kv_reply_error(struct kv_buf *b, const char *s);  /* -s */
int kv_reply_errorf(struct kv_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int kv_reply_int(struct kv_buf *b, long long v);
int kv_reply_bulk(struct kv_buf *b, const void *p, size_t len);
int kv_reply_cstr(struct kv_buf *b, const char *s); /* a bulk string */
int kv_reply_nil(struct kv_buf *b);
int kv_reply_array(struct kv_buf *b, size_t n);
/* RESP3 (HELLO 3): rewrite the RESP2 nulls of the replies in b[from..]
 * to "_" in place (0, or -1 if the bytes are not replies: unchanged up
 * to the bad token); a map of `pairs` pairs, a set, verbatim text, each
 * in RESP2's form when resp3 is 0. */
int kv_resp3_fix(struct kv_buf *b, size_t from);
int kv_reply_map(struct kv_buf *b, size_t pairs, int resp3);
int kv_reply_set(struct kv_buf *b, size_t n, int resp3);
int kv_reply_verbatim(struct kv_buf *b, const char *p, size_t len, int resp3);

/* Strict decimal int64 as Redis accepts it ("-12", not "+1", " 1", "01"). */
int kv_parse_ll(const char *s, size_t len, long long *out);

/* ------------------------------------------------------------------ */
/* Hash table (kvmap.c)                                               */
/* ------------------------------------------------------------------ */

struct kv_ent {
	struct kv_ent *next;
	uint64_t hash;
	uint32_t klen, vlen;
	char data[]; /* key bytes, then value bytes */
};

static inline const char *kv_ent_key(const struct kv_ent *e)
{
	return e->data;
}
static inline const char *kv_ent_val(const struct kv_ent *e)
{
	return e->data + e->klen;
}

struct kv_map {
	struct kv_ent **b;
	size_t nb;	 /* buckets, a power of two */
	size_t count;	 /* keys */
	uint64_t bytes;	 /* key and value bytes held */
	uint64_t k0, k1; /* SipHash key */
	/* Expiry (kvmap.c): key -> absolute ms; NULL until a key has one. */
	struct kv_map *ttl;
	uint64_t now; /* the time keys expire against (the log's time) */
};

int kv_map_init(struct kv_map *m);
void kv_map_free(struct kv_map *m);
/* Swap two maps (restore builds a new one and swaps it in). */
void kv_map_swap(struct kv_map *a, struct kv_map *b);
const struct kv_ent *kv_map_get(const struct kv_map *m, const void *key,
				size_t klen);
/* 0, or -1 when out of memory (the map is unchanged). */
int kv_map_set(struct kv_map *m, const void *key, size_t klen, const void *val,
	       size_t vlen);
/* 1 if the key was there. */
int kv_map_del(struct kv_map *m, const void *key, size_t klen);
/* Iterate: start with *bucket = 0, *e = NULL; returns NULL at the end. */
const struct kv_ent *kv_map_next(const struct kv_map *m, size_t *bucket,
				 const struct kv_ent *e);
uint64_t kv_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len);
/* Start loading the buckets of n keys (a hint for a run of writes). */
void kv_map_prefetch(const struct kv_map *m, size_t n, const void *const *keys,
		     const size_t *klens);
/* kvfsm.c: up to max keys an entry's write touches; how many. */
size_t kv_fsm_entry_keys(const void *data, size_t len, const void **keys,
			 size_t *klens, size_t max);
/* Expiry: a key whose time is <= m->now is absent to get/del/set. */
uint64_t kv_map_ttl(const struct kv_map *m, const void *key, size_t klen);
int kv_map_set_ttl(struct kv_map *m, const void *key, size_t klen,
		   uint64_t at); /* at 0: none; -1 on allocation failure */
int kv_map_live(const struct kv_map *m, const struct kv_ent *e);
size_t kv_map_ttl_count(const struct kv_map *m);
/* Keys not expired (a walk of the expiry table). */
size_t kv_map_live_count(const struct kv_map *m);
/* Remove up to max expired keys; how many were removed. */
size_t kv_map_purge_expired(struct kv_map *m, size_t max);

/* ------------------------------------------------------------------ */
/* State machine (kvfsm.c)                                            */
/* ------------------------------------------------------------------ */

/* Write operations as they travel in log entries. */
enum {
	KV_OP_SET = 1,	   /* key value */
	KV_OP_DEL = 2,	   /* key... ; result: keys deleted */
	KV_OP_INCRBY = 3,  /* key delta(8 bytes LE) ; result: new value */
	KV_OP_MSET = 4,	   /* key value [key value...] */
	KV_OP_MULTI = 5,   /* watches, command... (txn.c) */
	KV_OP_SESSION = 6, /* id, seq, time, write (session.c) */
	/* ops.c: replies built by apply (the result's resp) */
	KV_OP_SETX = 7,
	KV_OP_GETDEL = 8,
	KV_OP_APPEND = 9,
	KV_OP_SETRANGE = 10,
	KV_OP_INCRBYFLOAT = 11,
	KV_OP_MSETNX = 12,
	KV_OP_RENAME = 13,
	KV_OP_FLUSH = 14,
	KV_OP_TIMED = 15,   /* time (8 bytes LE ms), write: the log's clock */
	KV_OP_EXPIRE = 16,  /* flags, key, at (8) (ops.c) */
	KV_OP_PERSIST = 17, /* key */
	KV_OP_GETEX = 18,   /* mode, key, at (8) */
	/* Reads, only inside a KV_OP_MULTI entry (txn.c). */
	KV_OP_R_GET = 32,
	KV_OP_R_MGET = 33,
	KV_OP_R_EXISTS = 34,
	KV_OP_R_STRLEN = 35,
	KV_OP_R_DBSIZE = 36,
	KV_OP_R_TTL =
		37 /* mode (0 TTL, 1 PTTL, 2 EXPIRETIME, 3 PEXPIRE...), key */
};

/* The result of an applied write, handed to the proposer. */
enum { KV_RES_OK = 0, KV_RES_NOTINT = 1, KV_RES_OVERFLOW = 2 };
struct kv_result {
	int code;
	long long num;
	size_t len; /* bytes in resp: a complete RESP reply (EXEC), or 0 */
	char resp[];
};

/*
 * Encode op with n arguments (pointers and lengths) into b, appending.
 * Format: u8 op, u32 argc, then per argument u32 length and the bytes
 * (little-endian).  Returns 0 or -1 (allocation).
 */
int kv_cmd_encode(struct kv_buf *b, int op, size_t n, const char *const *argv,
		  const size_t *lens);

/* Walk the arguments of an encoded command.  init validates the whole
 * encoding and returns the argument count, or -1. */
struct kv_cmd_iter {
	const unsigned char *p;
	uint32_t left;
};
int kv_cmd_iter_init(struct kv_cmd_iter *it, const void *data, size_t len);
int kv_cmd_iter_next(struct kv_cmd_iter *it, const char **arg, size_t *len);

/* The delta of INCRBY travels as 8 little-endian bytes. */
void kv_cmd_le64(unsigned char out[8], long long v);

struct kv_fsm {
	struct kv_map map;
	struct kv_map sessions; /* client sessions (session.c); lazily made */
	sr_node *node;		/* for snapshot_write/done/read */
	sr_index applied;
	uint64_t n_snapshots, n_restores;
	sr_index last_restore_index;
	/* Called (when set) after a restore replaced the map. */
	void (*restored)(void *ctx);
	void *restored_ctx;
	/* Where its few messages go (when set). */
	void (*log)(void *ctx, int level, const char *line);
	void *log_ctx;
	/*
	 * Background snapshots (snapfork.c).  loop NULL: every snapshot is
	 * serialized inline, in the engine's callback.  Otherwise a forked
	 * child serializes it while snap_pid is not 0, into the pipe snap_fd.
	 * snap_seq counts snapshots started, snap_done_seq the last one that
	 * ended (stored or not), snap_failed_seq the last one that was not
	 * stored: CLUSTER SNAPSHOT waits on them (wait.c).
	 */
	sr_loop *loop;
	uint32_t snap_test_delay_ms; /* --snapshot-test-delay-ms */
	int snap_fd;
	pid_t snap_pid;
	uint8_t snap_inline_next; /* the last child failed */
	unsigned char *snap_buf;
	uint64_t snap_seq, snap_done_seq, snap_failed_seq;
	uint64_t snap_start_us, last_snap_us, last_fork_us;
	uint64_t n_snap_forked, n_snap_failed;
};

/* snapfork.c: start serializing f's state in a child (0; SR_E* when no
 * child could be started: serialize inline instead), and kill a running
 * child (the snapshot it was writing is counted as failed). */
int kv_snapfork_start(struct kv_fsm *f);
void kv_snapfork_cancel(struct kv_fsm *f);
/* A monotonic clock, in microseconds (snapshot durations). */
uint64_t kv_snap_clock_us(void);

extern const sr_fsm_ops kv_fsm_ops;

/* Apply one encoded command directly (the unit tests use it). */
int kv_fsm_apply_cmd(struct kv_map *m, const void *data, size_t len,
		     struct kv_result **result);
/* Take the time out of a KV_OP_TIMED entry (m->now moves up to it, a few
 * expired keys are removed) and point at the write inside; -1 if
 * malformed. */
int kv_timed_unwrap(struct kv_map *m, const void **data, size_t *len);
/* Out of memory while applying a committed entry: exit 71 (restart
 * recovers), never diverge from the other nodes. */
void kv_fsm_oom(void) __attribute__((noreturn));

/* txn.c: apply a KV_OP_MULTI entry (the result carries EXEC's reply), and
 * the digest of a key's value that WATCH records (empty: absent). */
int kv_txn_apply(struct kv_map *m, const void *data, size_t len,
		 struct kv_result **result);
void kv_txn_digest(const struct kv_map *m, const char *key, size_t klen,
		   unsigned char out[8], size_t *out_len);
/* The RESP reply of an applied write (op, apply's rc and result). */
void kv_txn_write_reply(int op, int rc, const struct kv_result *r,
			struct kv_buf *o);

/* ops.c: apply a KV_OP_SETX..KV_OP_FLUSH entry; whether a string is a
 * float INCRBYFLOAT accepts. */
int kv_ops_apply(struct kv_map *m, const void *data, size_t len,
		 struct kv_result **result);
int kv_ops_valid_float(const char *p, size_t len);

/* session.c: apply a KV_OP_SESSION entry against the session table. */
#define KV_SESSION_TTL_MS (3600u * 1000u)
int kv_session_apply(struct kv_map *m, struct kv_map *sessions,
		     const void *data, size_t len, struct kv_result **result);

/*
 * Snapshot image: the map serialized to a sink, and parsed back from a
 * source.  The serializer writes through `write` in pieces of at most
 * KV_SNAP_CHUNK bytes; the parser pulls with `read` (n_out 0 at the end).
 * Format (little-endian): "KVSNAP01", u64 key count, then per key u32 key
 * length, u32 value length, key, value; then u32 CRC32C of everything
 * before it.
 */
#define KV_SNAP_CHUNK (1u << 20)
typedef int (*kv_snap_write_fn)(void *ctx, const void *data, size_t len);
typedef int (*kv_snap_read_fn)(void *ctx, uint64_t off, void *buf, size_t len,
			       size_t *n_out);
int kv_snap_save(const struct kv_map *m, kv_snap_write_fn fn, void *ctx);
/* The same with the session table (NULL: none). */
int kv_snap_save2(const struct kv_map *m, const struct kv_map *sessions,
		  kv_snap_write_fn fn, void *ctx);
/* Build *out (initialized here) from the image of `size` bytes (or
 * KV_SNAP_SIZE_UNKNOWN: until the source ends); SR_ECORRUPT on bad bytes,
 * and *out is left empty (freed). */
#define KV_SNAP_SIZE_UNKNOWN UINT64_MAX
int kv_snap_load(struct kv_map *out, uint64_t size, kv_snap_read_fn fn,
		 void *ctx);
/* The same, also loading the session table into *sessions (initialized
 * here; empty for a KVSNAP01 image). */
int kv_snap_load2(struct kv_map *out, struct kv_map *sessions, uint64_t size,
		  kv_snap_read_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* The server (server.c, cmds.c, raft.c, info.c)                      */
/* ------------------------------------------------------------------ */

struct kv_opts {
	sr_id id;
	const char *data_dir;
	const char *client_addr;
	const char *raft_addr;
	const char *peers; /* NULL: none */
	int storage_wal;   /* 1: wal, 0: mem */
	uint32_t election_ms;
	uint32_t heartbeat_ms;
	uint64_t snapshot_threshold;
	uint64_t snapshot_trailing;
	uint64_t snapshot_bytes; /* 0: by count only */
	int snapshot_fork;	 /* serialize snapshots in a child */
	/* testing: a snapshot's child waits this long before writing */
	uint32_t snapshot_test_delay_ms;
	uint64_t wal_segment; /* 0: the WAL's default */
	int wal_direct;	      /* sr_wal_options.direct_io */
	int wal_repair;	      /* SR_WAL_REPAIR_* (peers by default) */
	uint64_t max_bulk;
	uint32_t timeout_ms;
	uint32_t write_batches; /* in flight per group; 0: no limit */
	uint64_t cluster_id;
	uint32_t max_clients;
	/* --client-output-buffer-limit HARD SOFT SECONDS (0: no limit) and
	 * --idle-timeout SECONDS (0: never), as Redis's settings (server.c). */
	uint64_t obuf_hard, obuf_soft;
	uint32_t obuf_soft_secs;
	uint32_t idle_timeout_s;
	int log_level;
	const char *requirepass; /* NULL: no AUTH needed */
	const char *user;	 /* "NAME:PASS" (--user), or NULL */
	int plain;		 /* --cluster-mode no: no CROSSSLOT */
	unsigned groups;	 /* --groups: Raft groups sharing the slots */
	/* --cluster-secret-file: the peers' shared secret (first line) and
	 * a previous one still accepted during a rotation (second line);
	 * lengths 0: none */
	const char *secret_file;
	char secret[1025], secret_prev[1025];
	size_t secret_len, secret_prev_len;
};

struct kv_conn;
struct kv_req;
struct kv_rbatch;
struct kv_txn;
struct kv_wait;

/* A queue of write commands waiting for the end of the loop iteration. */
struct kv_batch {
	struct kv_buf data; /* encoded commands, back to back */
	size_t n, cap;
	size_t *ends; /* end offset of each command in data */
	struct kv_req **reqs;
	int scheduled;
	/* Batches proposed, and the last one whose every entry is done:
	 * flushed - done are in flight (--write-batches, requests.c). */
	uint64_t flushed, done;
};

/*
 * One Raft group (groups.c): a contiguous range of the 16384 slots, its
 * member of the group (the runtime, the engine, the state machine) and
 * the requests waiting for that engine.  Every kvnode process hosts
 * every group; --groups 1 is one group holding every slot.
 */
struct kv_group {
	struct kv_server *s;
	unsigned idx;			/* 0 .. ngroups-1 */
	unsigned first_slot, last_slot; /* inclusive */
	sr_server *srv;			/* the runtime carrying every group */
	sr_group *grp; /* the group in srv: its engine, log, peers */
	sr_node *node; /* its engine, for status and the fsm */
	struct kv_fsm fsm;
	/* Membership as the engine last reported it (conf_changed). */
	sr_membership conf;
	struct kv_batch batch;
	/* Reads waiting for the end of the iteration, and those waiting
	 * for their ReadIndex (requests.c). */
	struct kv_rbatch *rpending, *rbatches;
	int rscheduled;
	uint64_t n_transfers; /* leadership handed over by the balancer */
};

struct kv_server {
	struct kv_opts opt;
	sr_loop *loop;
	uint32_t max_entry; /* the engine's largest entry (max_entry_bytes) */
	/* The Raft groups (groups.c): slot ranges in order, opt.groups. */
	struct kv_group *groups;
	unsigned ngroups;
	uint64_t balance_timer;
	int lock_fd;
	int listen_fd;
	int accept_paused;

	uint64_t sweep_timer;
	int stopping;
	int fatal; /* the storage error that stopped the engine, or 0 */

	struct kv_conn *conns; /* every client connection */
	uint32_t n_conns;
	uint64_t next_conn_id;
	struct kv_conn *dirty;	  /* connections with output to flush */
	struct kv_conn *flushing; /* those being flushed (server.c) */
	int flush_scheduled;
	/* Connections by last activity (oldest first), those over the soft
	 * output limit, the input buffer lent to the connection being read,
	 * the periodic limits check (server.c). */
	struct kv_conn *active_head, *active_tail;
	struct kv_conn *heavy;
	struct kv_buf spare_in;
	/* A write's encoding and its TIMED wrapper (cmds.c), reused from
	 * one write to the next rather than allocated for each. */
	struct kv_buf enc_scratch, timed_scratch;
	uint64_t cron_timer;

	/* Requests the engine holds a reference to: still waiting for their
	 * outcome (ordered by deadline), or orphaned (their client went away
	 * or was answered TIMEOUT) and freed when the engine lets go. */
	struct kv_req *waiting_head, *waiting_tail;
	struct kv_req *orphans;

	/* WAITs parked until enough replicas hold their writes (wait.c). */
	struct kv_wait *waits;
	size_t nwaits, waits_cap;
	uint64_t wait_timer;

	/* Counters for INFO. */
	uint64_t n_commands, n_writes, n_reads, n_moved, n_timeouts;
	/* Write batches proposed, those that waited for one in flight, and
	 * the most in flight at once (requests.c). */
	uint64_t n_wbatches, n_wbatch_waits, n_wbatch_inflight_max;
	uint64_t n_accepted, n_rejected_conns, n_proto_errors;
	uint64_t n_obuf_disconnects, n_qbuf_disconnects, n_idle_disconnects;
	uint64_t started_ms;
};

/* raft.c */
int kv_raft_open(struct kv_server *s);
void kv_raft_close(struct kv_server *s);
/* Tell the engines the time before reading their status (see raft.c). */
void kv_raft_sync_time(struct kv_server *s);
/* Nothing: the runtime re-arms its own timer (kept for callers). */
void kv_raft_kick(struct kv_server *s);
/* The client address ("host:port") of member id in g's configuration,
 * or NULL. */
const char *kv_raft_client_addr(const struct kv_group *g, sr_id id);
/* Split "raft/client" into its parts; 0 or -1. */
int kv_addr_split(const char *addr, char *raft, size_t raft_cap, char *client,
		  size_t client_cap);
/* Parse --peers ("1=RAFT/CLIENT,2=...") into voters; 0 or -1 with err. */
int kv_peers_parse(const char *spec, sr_membership *out, char *err,
		   size_t errcap);
/* 1 if this node is a learner in the configuration in effect. */
int kv_raft_is_learner(const struct kv_server *s);

/* server.c */
int kv_server_listen(struct kv_server *s);
void kv_server_close_all(struct kv_server *s);
void kv_server_free_reqs(struct kv_server *s);
/* Engine callbacks that finish requests. */
void kv_server_write_done(struct kv_group *g, void *cookie, int status,
			  void *result);
void kv_server_read_done(struct kv_group *g, void *cookie, int status);

/* A command being executed. */
struct kv_cmdctx {
	struct kv_server *s;
	struct kv_conn *c;
	size_t argc;
	const char *const *argv;
	const size_t *lens;
	struct kv_buf *out; /* where a synchronous reply goes */
	/* The group the command runs in (its keys' slot, else the home
	 * group: groups.c) and a slot of that group for MOVED. */
	struct kv_group *g;
	unsigned slot;
	struct kv_txn *txn; /* inside MULTI: queue, do not run (multi.c) */
	int queued;	    /* set when the command was queued */
	int session;	    /* inside SESSION id seq: wrap the write */
	uint64_t sess_id, sess_seq;
};

/* cmds.c: run one command.  A synchronous command writes its reply to
 * ctx->out; an asynchronous one calls kv_server_async_write/read. */
void kv_cmd_exec(struct kv_cmdctx *ctx);
/* server.c: queue a write (encoded) or a read for this connection. */
void kv_server_async_write(struct kv_cmdctx *ctx, int kind,
			   const struct kv_buf *encoded);
void kv_server_async_read(struct kv_cmdctx *ctx, int kind);
/* Evaluate a read command (argv encoded as by kv_cmd_encode) now. */
void kv_cmd_eval_read(struct kv_group *g, int kind, const char *enc, size_t len,
		      struct kv_buf *out);
/* Format a write's outcome. */
void kv_cmd_write_reply(struct kv_group *g, int kind, int status,
			const struct kv_result *r, struct kv_buf *out);

size_t kv_cmd_count(void);
/* cluster.c: CLUSTER ADD/REMOVE/TRANSFER/PROMOTE/SNAPSHOT/NODES/INFO. */
void kv_cluster_cmd(struct kv_cmdctx *ctx);
/* server.c: close the connection once the replies owed are written. */
void kv_server_close_after_reply(struct kv_conn *c);
uint64_t kv_server_conn_id(const struct kv_conn *c);

/* Kinds of asynchronous commands. */
enum {
	KV_K_SET = 1,
	KV_K_DEL,
	KV_K_INCR,
	KV_K_MSET,
	KV_K_GET,
	KV_K_MGET,
	KV_K_EXISTS,
	KV_K_DBSIZE,
	KV_K_STRLEN,
	KV_K_EXEC, /* a write whose result carries its RESP reply */
	KV_K_GETRANGE,
	KV_K_KEYS,
	KV_K_SCAN,
	KV_K_TYPE,
	KV_K_RANDOMKEY,
	KV_K_TTL /* TTL, PTTL, EXPIRETIME, PEXPIRETIME (by name) */
};
/* 1 for the kinds whose fate is unknown after a TIMEOUT (writes). */
int kv_cmd_kind_is_write(int kind);
/* Propose an encoded write stamped with the leader's clock (a
 * KV_OP_TIMED entry: keys expire against the log's time). */
void kv_cmd_propose(struct kv_cmdctx *ctx, int kind, const struct kv_buf *enc);
/* This node's wall clock in ms (the leader stamps it into writes). */
uint64_t kv_wall_ms(void);
/* 1 if this node leads group g now. */
int kv_cmd_is_leader(struct kv_group *g);

/* multi.c: transactions (txn.c applies them). */
struct kv_txn *kv_multi_active(struct kv_cmdctx *ctx);
void kv_multi_fail(struct kv_txn *t);
/* A queued command's keys are in slot; EXEC answers CROSSSLOT if the
 * queued commands name more than one slot. */
void kv_multi_note_slot(struct kv_cmdctx *ctx, struct kv_txn *t, unsigned slot);
void kv_multi_free(struct kv_txn *t);
/* Queue an encoded command (op and its arguments) and reply +QUEUED. */
void kv_multi_queue(struct kv_cmdctx *ctx, int op, size_t n,
		    const char *const *argv, const size_t *lens);
void kv_multi_cmd_multi(struct kv_cmdctx *ctx);
void kv_multi_cmd_exec(struct kv_cmdctx *ctx);
void kv_multi_cmd_discard(struct kv_cmdctx *ctx);
void kv_multi_cmd_watch(struct kv_cmdctx *ctx);
void kv_multi_cmd_unwatch(struct kv_cmdctx *ctx);

/* groups.c: the slot ranges and their groups, leader balancing. */
#define KV_SLOTS      16384
#define KV_MAX_GROUPS 64
/* The slot range of group idx of n (contiguous, in order). */
unsigned kv_group_first_slot(unsigned idx, unsigned n);
struct kv_group *kv_group_of_slot(struct kv_server *s, unsigned slot);
/* The group for a command without keys: the first group this node leads,
 * else group 0 (which redirects). */
struct kv_group *kv_group_home(struct kv_server *s);
/* Allocate s->groups (opt.groups of them) with empty maps; -1 on OOM. */
int kv_groups_init(struct kv_server *s);
void kv_groups_free(struct kv_server *s);
/* Refuse a data directory made with another --groups (logged); -1. */
int kv_groups_check_dir(struct kv_server *s);
/* Start / stop the leader balancer (a periodic leadership transfer of
 * each group to its preferred member). */
int kv_balance_start(struct kv_server *s);
void kv_balance_stop(struct kv_server *s);

/* slots.c: the Redis Cluster protocol over the Raft groups. */
/* The slot of a key: CRC16/XMODEM of the key or of its {hash tag}. */
unsigned kv_key_slot(const char *key, size_t len);
/* The 40-hex-digit Redis node id of Raft member id. */
void kv_node_name(const struct kv_server *s, sr_id id, char out[41]);
/* CLUSTER SLOTS/SHARDS/NODES/MYID/KEYSLOT/COUNTKEYSINSLOT/GETKEYSINSLOT;
 * 0 if argv[1] is none of them (nothing was replied). */
int kv_slots_cmd(struct kv_cmdctx *ctx);
/* The reply for a keyed command on a node that does not lead the slot's
 * group: MOVED <slot> <leader>, TRYAGAIN (leader silent) or CLUSTERDOWN. */
void kv_slot_redirect(struct kv_server *s, unsigned slot, struct kv_buf *out);

/* auth.c: AUTH, HELLO; 1 if the connection may run command c (name)
 * now, else NOAUTH was replied. */
int kv_auth_check(struct kv_cmdctx *ctx, const char *name);
void kv_auth_cmd_auth(struct kv_cmdctx *ctx);
void kv_auth_cmd_hello(struct kv_cmdctx *ctx);

/* server.c: per-connection state the commands change. */
enum { KV_REPLY_ON = 0, KV_REPLY_OFF = 1, KV_REPLY_SKIP = 2 };
void kv_server_reply_mode(struct kv_conn *c, int mode);
const char *kv_server_conn_name(const struct kv_conn *c);
/* The connection's transaction state (multi.c owns it; freed on close). */
struct kv_txn **kv_server_conn_txn(struct kv_conn *c);
/* 1 once the connection authenticated (AUTH, HELLO AUTH). */
int kv_server_conn_authed(const struct kv_conn *c);
void kv_server_set_conn_authed(struct kv_conn *c);
/* 1 after HELLO 3: replies in RESP3 (server.c rewrites nulls). */
int kv_server_conn_resp3(const struct kv_conn *c);
void kv_server_set_conn_resp3(struct kv_conn *c, int on);
void kv_server_set_conn_name(struct kv_conn *c, const char *name, size_t len);
/* CLIENT LIST/INFO lines: every connection, or only c. */
void kv_server_client_list(struct kv_server *s, const struct kv_conn *only,
			   struct kv_buf *out);

/* wait.c: WAIT numreplicas timeout (checked); free its state at exit. */
void kv_wait_cmd(struct kv_cmdctx *ctx, long long want, long long timeout_ms);
void kv_wait_free(struct kv_server *s);
/* CLUSTER SNAPSHOT's reply, once the snapshot each group has started is
 * stored (+OK) or abandoned (an error). */
void kv_wait_snapshot(struct kv_cmdctx *ctx);

/* cluster.c */
void kv_info(struct kv_server *s, const char *section, struct kv_buf *out);

/* main.c */
uint64_t kv_now_ms(const struct kv_server *s);
void kv_log(struct kv_server *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kv_log_hook(void *ctx, int level, const char *line);

#endif

/*
 * seshat/codec.h — the wire encoding of sr_msg (docs/wire-protocol.md).
 *
 * Every message travels as one frame: a 20-byte header (magic, version,
 * type, group, payload length, CRC32C) followed by a type-specific payload
 * of fixed-width little-endian fields — or, between peers that both
 * offered it in their handshake, inside a batch frame that carries
 * several messages (of any groups) under one header and one CRC.  The codec is pure: it does no I/O,
 * keeps no state between calls and allocates only through the hooks a
 * decoder was given.  Any transport (the TCP one in backends/tcp, a test
 * harness, a future QUIC one) reuses it.
 *
 * Encoding writes into a caller buffer; sr_codec_size() says how big it
 * must be.  Decoding is strict and never reads past the bytes it was given:
 * a frame that is truncated, fails its CRC, has an unknown magic, version,
 * message type or entry type, a boolean other than 0/1, or lengths that
 * disagree with the payload (n_entries, entry len, conf_len) is rejected
 * with SR_EPROTO; one whose payload or entry count exceeds the decoder's
 * limits with SR_ETOOBIG.  Limits are checked against the header before
 * anything is allocated, and an entry count is checked against the bytes
 * actually present before the entries array is grown.
 */
#ifndef SESHAT_CODEC_H
#define SESHAT_CODEC_H

#include "msg.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "SRAF"; frame header: magic, version, type, group, len, crc */
#define SR_FRAME_MAGIC		     0x46415253u
#define SR_FRAME_VERSION	     1
#define SR_FRAME_HDR_SIZE	     20
/* Frame type of the connection handshake; its payload: cluster, from, to,
 * then the sender's address in SR_ADDR_MAX bytes (NUL-padded) */
#define SR_FRAME_HELLO		     64
#define SR_HELLO_PAYLOAD	     (24 + SR_ADDR_MAX)
/* An append entry on the wire: term, index, type, len, then len bytes */
#define SR_WIRE_ENTRY_SIZE	     24
/* Frame type of a batch: several messages in one frame, group 0 in its
 * header.  Its payload is one or more items, back to back; an item is a
 * message's type (u16), group (u32) and payload length (u32), then the
 * payload exactly as in the message's own frame. */
#define SR_FRAME_BATCH		     32
#define SR_BATCH_ITEM_HDR_SIZE	     10
/* Frame types of coalesced messages: many heartbeats (appends without
 * entries), or many append_resps, of any groups, from one sender to one
 * receiver in one compact message.  Group 0 in the header; the payload is
 * from (u64), to (u64) and a record count (u32), then that many
 * fixed-size records, each one message's group, term and own fields. */
#define SR_FRAME_HEARTBEATS	     33
#define SR_FRAME_APPEND_RESPS	     34
#define SR_COALESCED_HDR_SIZE	     20
#define SR_HEARTBEAT_REC_SIZE	     44
#define SR_APPEND_RESP_REC_SIZE	     45
/* Feature bits a handshake offers (carried in its header's group field):
 * SR_FEATURE_BATCH, the sender accepts batch frames;
 * SR_FEATURE_COALESCE, the sender accepts coalesced frames. */
#define SR_FEATURE_BATCH	     1u
#define SR_FEATURE_COALESCE	     2u

/* Default decoder limits (the TCP transport uses the same defaults). */
#define SR_FRAME_MAX_DEFAULT	     (32u << 20) /* payload bytes */
#define SR_FRAME_MAX_ENTRIES_DEFAULT 65536u

/* A frame header, as read by sr_codec_header(). */
typedef struct sr_frame_hdr {
	uint32_t type;	/* SR_MSG_*, SR_FRAME_HELLO, _BATCH, _HEARTBEATS or
			   _APPEND_RESPS */
	uint32_t group; /* sr_msg.group */
	uint32_t len;	/* payload bytes after the header */
	uint32_t crc;	/* CRC32C of header bytes 0..15 and the payload */
} sr_frame_hdr;

/*
 * Bytes needed to encode msg (header included), or 0 if msg cannot be
 * encoded: unknown type or entry type, a NULL pointer with a non-zero
 * length or count, or a payload over 4 GiB.
 */
SR_API size_t sr_codec_size(const sr_msg *msg);

/*
 * Encode msg as one frame into buf (cap bytes); *len_out (if not NULL)
 * gets the frame size.  Nothing msg points to is kept.
 * Errors: SR_EINVAL (msg cannot be encoded, see sr_codec_size),
 * SR_ETOOBIG (cap is too small; buf may have been partly written).
 */
SR_API int sr_codec_encode(const sr_msg *msg, void *buf, size_t cap,
			   size_t *len_out);

/*
 * Read and check the header at buf (len >= SR_FRAME_HDR_SIZE bytes are
 * needed; fewer give SR_EPROTO).  Checks magic, version, that the type is
 * a message type, SR_FRAME_HELLO, SR_FRAME_BATCH or a coalesced type, and
 * that the payload is at most
 * max_payload bytes (else SR_ETOOBIG).  The CRC is checked by the decode
 * functions, once the payload is there.  A stream reader calls this as
 * soon as a header has arrived, then waits for SR_FRAME_HDR_SIZE +
 * hdr->len bytes in all.
 */
SR_API int sr_codec_header(const void *buf, size_t len, uint32_t max_payload,
			   sr_frame_hdr *hdr);

/*
 * A decoder: limits plus the storage decoded entries arrays live in.
 * It is plain data owned by the caller; one decoder decodes one frame at a
 * time.  Not thread-safe.
 */
typedef struct sr_decoder {
	uint32_t max_payload;  /* larger frames: SR_ETOOBIG */
	uint32_t max_entries;  /* more entries in one append: SR_ETOOBIG */
	const sr_alloc *alloc; /* grows `entries`; unused with fixed scratch */
	sr_entry *entries;     /* scratch for the decoded entries array */
	size_t cap;	       /* entries available in `entries` */
	int fixed; /* entries is the caller's; never grown or freed */
} sr_decoder;

/*
 * A decoder whose entries array grows on demand through alloc (NULL:
 * libc), never beyond max_entries (0: SR_FRAME_MAX_ENTRIES_DEFAULT).
 * max_payload 0 means SR_FRAME_MAX_DEFAULT.  Release with
 * sr_decoder_free().
 */
SR_API void sr_decoder_init(sr_decoder *d, uint32_t max_payload,
			    uint32_t max_entries, const sr_alloc *alloc);

/*
 * A decoder that never allocates: entries of an append are stored in
 * scratch[0..cap); an append with more entries gives SR_ETOOBIG.
 */
SR_API void sr_decoder_init_fixed(sr_decoder *d, uint32_t max_payload,
				  sr_entry *scratch, size_t cap);

/* Free what the decoder allocated (nothing for a fixed one). */
SR_API void sr_decoder_free(sr_decoder *d);

/*
 * Decode the message frame at the start of buf (len bytes, which may hold
 * more after the frame).  On success *out is filled and *frame_len (if
 * not NULL) is the frame's size.
 *
 * Lifetime: out->u.append.entries points into the decoder's entries array;
 * entry data and snapshot conf/data point into buf.  They stay valid while
 * buf is unchanged and until the next sr_codec_decode() or
 * sr_decoder_free() on d.
 *
 * Errors: SR_EPROTO (truncated, bad magic/version/CRC, unknown, hello or
 * batch type, inconsistent lengths, a field out of range), SR_ETOOBIG (payload
 * or entry count over the limits), SR_ENOMEM (growing the entries array).
 * *out is unspecified after an error.
 */
SR_API int sr_codec_decode(sr_decoder *d, const void *buf, size_t len,
			   sr_msg *out, size_t *frame_len);

/*
 * Batches (docs/wire-protocol.md, "Batch frames").  A sender builds one
 * in place: sr_codec_batch_begin() (or sr_codec_batch_wrap() of a message
 * frame already there), sr_codec_batch_add() per message, then
 * sr_codec_batch_seal() before the frame leaves.  Until it is sealed the
 * frame's length and CRC are not valid.
 */

/* Bytes msg takes as a batch item (item header included), or 0 if it
 * cannot be encoded (see sr_codec_size). */
SR_API size_t sr_codec_batch_item_size(const sr_msg *msg);

/* Start an empty batch at buf (SR_FRAME_HDR_SIZE bytes); SR_ETOOBIG if
 * cap is smaller. */
SR_API int sr_codec_batch_begin(void *buf, size_t cap);

/*
 * Append msg as an item to the unsealed batch at buf, whose size so far
 * is *len (cap: room at buf); *len grows by sr_codec_batch_item_size().
 * Errors: SR_EINVAL (msg cannot be encoded, *len is not a batch size),
 * SR_ETOOBIG (no room, or the payload would pass 4 GiB).
 */
SR_API int sr_codec_batch_add(const sr_msg *msg, void *buf, size_t cap,
			      size_t *len);

/*
 * Turn the message frame of *len bytes at buf into an unsealed batch
 * holding that one message, in place; *len grows by
 * SR_BATCH_ITEM_HDR_SIZE (cap: room at buf).  The frame's CRC is not
 * checked (it is the caller's own).  Errors: SR_EINVAL (not a message
 * frame of *len bytes), SR_ETOOBIG (no room).
 */
SR_API int sr_codec_batch_wrap(void *buf, size_t cap, size_t *len);

/* Fill in the length and CRC of the batch of len bytes at buf.
 * SR_EINVAL if it is not a batch with at least one item's worth of
 * bytes. */
SR_API int sr_codec_batch_seal(void *buf, size_t len);

/* A position in a checked batch; plain data, filled by
 * sr_codec_batch_open(). */
typedef struct sr_batch_iter {
	const uint8_t *next; /* the next item */
	size_t left;	     /* bytes from next to the end of the batch */
} sr_batch_iter;

/*
 * Check the batch frame at the start of buf (len bytes, which may hold
 * more): header, group 0, payload within d's max_payload, CRC, and items
 * that exactly fill the payload, each of a message type (a batch inside a
 * batch, or a handshake, is malformed), at least one.  On success *it is
 * at the first item, *count (if not NULL) is the number of items and
 * *frame_len (if not NULL) the frame's size.  The messages themselves are
 * decoded by sr_codec_batch_next().
 * Errors: SR_EPROTO (malformed), SR_ETOOBIG (over max_payload).
 */
SR_API int sr_codec_batch_open(const sr_decoder *d, const void *buf, size_t len,
			       sr_batch_iter *it, uint32_t *count,
			       size_t *frame_len);

/*
 * Decode the message at *it and advance: 1 with *out filled, 0 when the
 * batch is exhausted, or an error as sr_codec_decode() gives for a
 * malformed message (*it does not move).  Lifetime of what *out points
 * to: as for sr_codec_decode(), until the next decode on d.
 */
SR_API int sr_codec_batch_next(sr_decoder *d, sr_batch_iter *it, sr_msg *out);

/*
 * Coalesced messages (docs/wire-protocol.md, "Coalesced heartbeats").
 * Only two kinds of message coalesce: an append without entries (a
 * heartbeat, or an empty probe) and an append_resp; a record carries every
 * field of its message but from and to, which the frame carries once, so
 * the receiver gets back exactly the messages that were added, in order.
 * Built in place like a batch: sr_codec_coalesced_begin() with the first
 * message, sr_codec_coalesced_add() per further one, then
 * sr_codec_coalesced_seal() (count, length, CRC) before the frame leaves.
 */

/* SR_FRAME_HEARTBEATS for an append without entries,
 * SR_FRAME_APPEND_RESPS for an append_resp, 0 for any other message. */
SR_API uint32_t sr_codec_coalesced_type(const sr_msg *msg);

/* Bytes msg adds to a coalesced frame (its record), or 0 if it cannot be
 * coalesced. */
SR_API size_t sr_codec_coalesced_rec_size(const sr_msg *msg);

/*
 * Start an unsealed coalesced frame at buf (cap bytes) holding msg alone;
 * *len gets its size.  Errors: SR_EINVAL (msg cannot be coalesced),
 * SR_ETOOBIG (cap is too small).
 */
SR_API int sr_codec_coalesced_begin(const sr_msg *msg, void *buf, size_t cap,
				    size_t *len);

/*
 * Append msg to the unsealed coalesced frame of *len bytes at buf (cap:
 * room at buf); *len grows by its record.  Errors: SR_EINVAL (*len is not
 * the size of such a frame, or msg's kind, sender or receiver differs
 * from the frame's: start another), SR_ETOOBIG (no room, or the frame
 * would pass 4 GiB).
 */
SR_API int sr_codec_coalesced_add(const sr_msg *msg, void *buf, size_t cap,
				  size_t *len);

/* Fill in the record count, length and CRC of the coalesced frame of len
 * bytes at buf.  SR_EINVAL if it is not one with at least one record. */
SR_API int sr_codec_coalesced_seal(void *buf, size_t len);

/* A position in a checked coalesced frame; plain data, filled by
 * sr_codec_coalesced_open(). */
typedef struct sr_coalesced_iter {
	const uint8_t *next; /* the next record */
	uint32_t left;	     /* records from next to the end */
	uint32_t type;	     /* SR_FRAME_HEARTBEATS or _APPEND_RESPS */
	sr_id from;	     /* every message's sender */
	sr_id to;	     /* and receiver */
} sr_coalesced_iter;

/*
 * Check the coalesced frame at the start of buf (len bytes, which may
 * hold more): header (a coalesced type, group 0), payload within d's
 * max_payload, CRC, a record count of at least 1 that exactly fills the
 * payload, and every boolean 0 or 1.  On success *it is at the first
 * record, *count (if not NULL) is the number of records and *frame_len
 * (if not NULL) the frame's size.
 * Errors: SR_EPROTO (malformed), SR_ETOOBIG (over max_payload).
 */
SR_API int sr_codec_coalesced_open(const sr_decoder *d, const void *buf,
				   size_t len, sr_coalesced_iter *it,
				   uint32_t *count, size_t *frame_len);

/*
 * The message at *it, and advance: 1 with *out filled (type, group, from,
 * to, term and the type's fields; an append has no entries), 0 when the
 * frame is exhausted, SR_EINVAL for a NULL argument.  *out points to
 * nothing, so it stays valid after buf changes.
 */
SR_API int sr_codec_coalesced_next(sr_coalesced_iter *it, sr_msg *out);

/*
 * The handshake a connecting transport sends first (docs/wire-protocol.md,
 * "Handshake").  Its header's group field carries the sender's feature
 * bits (SR_FEATURE_*).
 */
typedef struct sr_hello {
	uint64_t cluster; /* cluster id both sides must share */
	sr_id from;	  /* the connecting node */
	sr_id to;	  /* the node it means to reach */
	/* where the sender accepts connections ("host:port"), so that a
	 * node that does not know it yet can answer; may be empty */
	char addr[SR_ADDR_MAX];
	/* SR_FEATURE_* bits the sender offers; a receiver ignores bits it
	 * does not know */
	uint32_t features;
} sr_hello;

#define SR_HELLO_FRAME_SIZE (SR_FRAME_HDR_SIZE + SR_HELLO_PAYLOAD)

/* Encode a hello frame (SR_HELLO_FRAME_SIZE bytes); SR_ETOOBIG if cap is
 * too small. */
SR_API int sr_codec_encode_hello(const sr_hello *h, void *buf, size_t cap);

/*
 * Decode a hello frame from buf (exactly or at least one frame).
 * Errors: SR_EPROTO (truncated, bad header or CRC, not a hello, wrong
 * payload size, an address without its NUL or with bytes after it).
 */
SR_API int sr_codec_decode_hello(const void *buf, size_t len, sr_hello *out);

#ifdef __cplusplus
}
#endif
#endif

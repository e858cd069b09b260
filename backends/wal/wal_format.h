/*
 * wal_format.h — the WAL's on-disk encodings (private to backends/wal).
 *
 * Every structure the WAL puts on disk is encoded and decoded here and
 * nowhere else, so docs/storage-format.md has exactly one code twin.  All
 * integers are fixed-width little-endian; every structure carries a
 * CRC32C; decoders never trust a length before checking it against the
 * bytes that are really there, and never assert on input.
 *
 *   segment header   64 bytes at offset 0 of each <seq>.wal
 *   record           48-byte header + payload + zero padding to 8 bytes
 *                    (version 2: bytes 44..47 carry the group id;
 *                    version 3: hard-state and drop records)
 *   meta             36 bytes: term and vote
 *   snapshot header  48 fixed bytes + membership + padding, then the data
 */
#ifndef WAL_FORMAT_H
#define WAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include <seshat/types.h>

#define WAL_VERSION	    1u /* meta files (lost: WAL_LOST_SIZE, version 2) */
/* Segments: version 2 tags each record with its group (bytes 44..47,
 * which version 1 kept as the zero high half of batch_off); version 3
 * adds the HARDSTATE and DROP records.  Version 1 and 2 segments are
 * still read (every record of a version-1 one belongs to group 0); new
 * records always go to a version-3 segment. */
#define WAL_SEG_VERSION	    3u
#define WAL_SEG_VERSION_2   2u
#define WAL_SEG_VERSION_1   1u
#define WAL_SEG_MAGIC	    "SRWALSEG"
#define WAL_META_MAGIC	    "SRWALMET"
#define WAL_SNAP_MAGIC	    "SRWALSNP"

#define WAL_SEG_HDR	    64u /* segment header size; records start here */
#define WAL_REC_HDR	    48u /* record header size */
#define WAL_META_SIZE	    36u
#define WAL_LOST_MAGIC	    "SRWALOST"
#define WAL_LOST_SIZE	    36u /* version 2 */
#define WAL_LOST_SIZE_V1    24u
#define WAL_SNAP_FIXED	    56u /* snapshot header before the membership */

/* Snapshot headers are version 2 when a member's role word uses bits above
 * the role (a joint configuration's new role, auto_promote), so that a
 * reader of version 1 refuses the file instead of misreading a role. */
#define WAL_SNAP_VERSION_2  2u

/* The largest payload a record may carry (an entry's len is a uint32_t,
 * but a record must fit in a segment of at most 1 GiB). */
#define WAL_REC_MAX_PAYLOAD (1024u * 1024u * 1024u - WAL_SEG_HDR - WAL_REC_HDR)

/* Indexes and terms beyond this are refused everywhere, so that index
 * arithmetic (upto + 1, last + n) can never wrap. */
#define WAL_INDEX_MAX	    (1ull << 62)

enum {
	WAL_REC_ENTRY = 1,    /* a log entry */
	WAL_REC_TRUNCATE = 2, /* delete entries >= index */
	WAL_REC_COMPACT = 3,  /* drop entries <= index */
	/* version 2: forget every earlier record of the group (drop, or a
	 * log that recovery restarted after the group's snapshot); index 0 */
	WAL_REC_RESET = 4,
	/* version 3: the group's term (header term field) and vote (an
	 * 8-byte payload); index 0.  Groups other than 0 only. */
	WAL_REC_HARDSTATE = 5,
	/* version 3: the group was dropped: forget every earlier record of
	 * it, its hard state included; index 0 */
	WAL_REC_DROP = 6
};

/* The payload of a HARDSTATE record: the vote. */
#define WAL_HARDSTATE_LEN 8u

/* What a decoder found. */
enum {
	WALFMT_OK = 0,
	WALFMT_ZERO = 1, /* all zero: never written (preallocated space) */
	WALFMT_BAD = 2	 /* damaged: wrong magic, length or CRC */
};

struct wal_seg_hdr {
	uint64_t seq;	      /* the segment's number, as in its file name */
	uint64_t first_index; /* the log's first index when it was started */
	uint64_t start_index; /* the index the next entry would take then */
	uint64_t first_batch; /* batch number of its first batch */
};

struct wal_rec {
	uint32_t len;	    /* payload bytes */
	uint32_t kind;	    /* WAL_REC_* */
	uint32_t etype;	    /* entry type (ENTRY), else 0 */
	uint64_t index;	    /* entry index, truncate from, compact upto */
	uint64_t term;	    /* entry term (ENTRY), else 0 */
	uint64_t batch;	    /* the write batch the record was written in */
	uint64_t batch_off; /* segment offset where that batch starts */
	uint32_t group;	    /* the Raft group (0 in version-1 segments) */
	const unsigned char *data; /* decode: points into the input */
};

struct wal_meta {
	uint64_t term;
	uint64_t vote;
};

struct wal_snap_hdr {
	uint32_t hdr_size; /* bytes before the data */
	uint64_t index;
	uint64_t term;
	uint64_t data_size;
	uint32_t data_crc;
	uint32_t conf_len;
};

static inline void wal_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static inline void wal_put64(unsigned char *p, uint64_t v)
{
	wal_put32(p, (uint32_t)v);
	wal_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t wal_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t wal_get64(const unsigned char *p)
{
	return (uint64_t)wal_get32(p) | (uint64_t)wal_get32(p + 4) << 32;
}

/* Bytes a record with a len-byte payload takes on disk. */
static inline uint64_t wal_rec_size(uint64_t len)
{
	return WAL_REC_HDR + ((len + 7u) & ~(uint64_t)7u);
}

/* 1 if the n bytes at p are all zero. */
int wal_fmt_is_zero(const unsigned char *p, size_t n);

void wal_fmt_seg_hdr_encode(unsigned char out[WAL_SEG_HDR],
			    const struct wal_seg_hdr *h);
/* The same with a given format version (tests write version 1). */
void wal_fmt_seg_hdr_encode_v(unsigned char out[WAL_SEG_HDR],
			      const struct wal_seg_hdr *h, uint32_t version);
/* The version of a header that decoded OK (1 or 2). */
static inline uint32_t wal_fmt_seg_version(const unsigned char *in)
{
	return (uint32_t)in[8] | (uint32_t)in[9] << 8 | (uint32_t)in[10] << 16 |
	       (uint32_t)in[11] << 24;
}
/* WALFMT_OK, _ZERO or _BAD (with *why set). */
int wal_fmt_seg_hdr_decode(const unsigned char in[WAL_SEG_HDR],
			   struct wal_seg_hdr *h, const char **why);

/*
 * Encode r (header, r->len payload bytes from r->data, padding) into out,
 * which has wal_rec_size(r->len) bytes.  Computes the CRC.
 */
void wal_fmt_rec_encode(unsigned char *out, const struct wal_rec *r);

/*
 * The same without the CRC (left zero): the WAL serializes on the host's
 * thread and seals (computes the CRCs) later, off the critical path.
 */
void wal_fmt_rec_encode_unsealed(unsigned char *out, const struct wal_rec *r);

/*
 * Compute the CRC of every record in buf[from, to), which holds whole
 * records written by wal_fmt_rec_encode_unsealed().
 */
void wal_fmt_seal(unsigned char *buf, size_t from, size_t to);

/* Read the fields of a record this process wrote (no check at all). */
void wal_fmt_rec_fields(const unsigned char *in, struct wal_rec *r);

/*
 * Look at a record header (WAL_REC_HDR bytes at segment offset off, with
 * avail bytes of file from off on).  Returns WALFMT_ZERO for an all-zero
 * header, WALFMT_BAD for one that cannot be a record (*why says why), else
 * WALFMT_OK with *size the whole record's size (<= avail).  The CRC is not
 * checked yet.
 */
int wal_fmt_rec_peek(const unsigned char *hdr, uint64_t off, uint64_t avail,
		     uint64_t *size, const char **why);

/*
 * May a segment of that version hold record r?  (Version 1: group 0's
 * ENTRY, TRUNCATE and COMPACT; version 2: any group, RESET; version 3:
 * HARDSTATE and DROP too.)
 */
int wal_fmt_rec_allowed(uint32_t seg_version, const struct wal_rec *r);

/*
 * Decode and check a whole record (size bytes from wal_fmt_rec_peek at
 * segment offset off).  WALFMT_OK or WALFMT_BAD (*why).  r->data points
 * into in.
 */
int wal_fmt_rec_decode(const unsigned char *in, uint64_t off, uint64_t size,
		       struct wal_rec *r, const char **why);

void wal_fmt_meta_encode(unsigned char out[WAL_META_SIZE],
			 const struct wal_meta *m);
int wal_fmt_meta_decode(const unsigned char *in, size_t len, struct wal_meta *m,
			const char **why);

/* The lost file (protocol-aware repair): the highest index that damaged
 * records held and an upper bound of their terms.  Version 2:
 * magic[8] lost_last[8] version[4]=2 reserved[4]=0 lost_term[8]
 * crc32c[4] of the 32 bytes before it.  Version 1 (24 bytes) had no term:
 * magic[8] lost_last[8] reserved[4]=0 crc32c[4]; it decodes with
 * *term = 0 (unknown). */
void wal_fmt_lost_encode(unsigned char out[WAL_LOST_SIZE], sr_index last,
			 sr_term term);
int wal_fmt_lost_decode(const unsigned char *in, size_t len, sr_index *last,
			sr_term *term, const char **why);

/* Bytes the membership takes in a snapshot header. */
size_t wal_fmt_conf_size(const sr_membership *conf);
/* The snapshot header size for a membership (a multiple of 8). */
uint32_t wal_fmt_snap_hdr_size(const sr_membership *conf);
/* Encode the header (h->hdr_size bytes, from wal_fmt_snap_hdr_size). */
void wal_fmt_snap_hdr_encode(unsigned char *out, const struct wal_snap_hdr *h,
			     const sr_membership *conf);
/*
 * Decode a snapshot header from the first len bytes of the file (at most
 * h->hdr_size are used).  Needs len >= WAL_SNAP_FIXED to learn hdr_size;
 * returns WALFMT_BAD with *why "short" if len < h->hdr_size (read more
 * and call again).  conf may be NULL.
 */
int wal_fmt_snap_hdr_decode(const unsigned char *in, size_t len,
			    struct wal_snap_hdr *h, sr_membership *conf,
			    const char **why);

#endif

/*
 * wal_read.c — reading entries back: the storage vtable's read() and the
 * term of one entry (recovery's reconciliation with a snapshot).
 *
 * pos[] (wal_plan.c) says where each entry's record is: (segment << 32) |
 * offset.  A record whose bytes are in the file (the engine published
 * them: offset + size <= the segment's `written`) is read through a
 * window of WAL_WINDOW bytes of that segment, so that a run of entries
 * costs one pread, and is checked (header, CRC, index, group) as at
 * recovery: a disk that lies is reported as SR_ECORRUPT, never handed
 * to the engine.  A record still in a queued buffer is copied from it
 * under mu, without its CRC (the writer may be sealing it right now):
 * this process wrote it.
 *
 * Entry data is copied into w->rbuf, which the returned entries point
 * into until the next read().
 */
#include <errno.h>
#include <string.h>

#include "wal_int.h"

#define WAL_WINDOW (256u * 1024u)

static int win_grow(sr_wal *w, size_t n)
{
	unsigned char *p;

	if (n <= w->win_cap)
		return 0;
	p = wal_mem_realloc(w, w->win, n);
	if (!p)
		return SR_ENOMEM;
	w->win = p;
	w->win_cap = n;
	return 0;
}

/*
 * Copy a record still in a queued buffer into the window (under mu).  Its
 * CRC may not be computed yet, and the writer may be storing it right now:
 * the CRC field is not copied, and the record is trusted (this process
 * wrote it).
 */
static int fetch_queued(sr_wal *w, uint64_t seq, uint64_t off, size_t *len)
{
	for (struct wal_item *it = w->head; it; it = it->next) {
		size_t at, size;

		if (it->kind != ITEM_BATCH || it->seg != seq || off < it->off ||
		    off + WAL_REC_HDR > it->off + it->len)
			continue;
		at = (size_t)(off - it->off);
		size = (size_t)wal_rec_size(wal_get32(it->buf + at + 4));
		if (win_grow(w, size))
			return SR_ENOMEM;
		memset(w->win, 0, 4);
		memcpy(w->win + 4, it->buf + at + 4, size - 4);
		w->win_seg = 0; /* not a file window */
		*len = size;
		return 0;
	}
	return w->failed ? w->failed : SR_EIO;
}

/* Make [off, off + n) of segment seq (fd) readable in the window. */
static int win_fill(sr_wal *w, int fd, uint64_t seq, uint64_t off, size_t n,
		    uint64_t limit)
{
	size_t want = n > WAL_WINDOW ? n : WAL_WINDOW;
	int rv;

	if (w->win_seg == seq && off >= w->win_off &&
	    off + n <= w->win_off + w->win_len)
		return 0;
	if (off + n > limit)
		return SR_ECORRUPT;
	if (want > limit - off)
		want = (size_t)(limit - off);
	if ((rv = win_grow(w, want)))
		return rv;
	w->win_seg = 0;
	if (wal_io_pread_all(fd, w->win, want, off) != 0) {
		char name[32];

		wal_io_seg_name(name, sizeof(name), seq);
		wal_io_logf(w, SR_LOG_ERROR, "wal: reading %s/%s at %llu: %s",
			    w->dir, name, (unsigned long long)off,
			    strerror(errno));
		return SR_EIO;
	}
	w->win_seg = seq;
	w->win_off = off;
	w->win_len = want;
	return 0;
}

/* Fetch and check the record at pos; *r points into the window. */
static int fetch_record(sr_wal *w, uint64_t pos, struct wal_rec *r)
{
	uint64_t seq = pos >> 32, off = pos & 0xffffffffu, size, limit = 0;
	const unsigned char *p;
	const char *why = "record not found";
	struct wal_seg *s;
	size_t qlen = 0;
	int fd = -1, rv = 0;
	char name[32];

	pthread_mutex_lock(&w->mu);
	s = wal_queue_seg_find(w, seq);
	if (s && off + WAL_REC_HDR <= s->written) {
		fd = s->fd;
		limit = s->written;
	} else {
		rv = s ? fetch_queued(w, seq, off, &qlen) : SR_ECORRUPT;
	}
	pthread_mutex_unlock(&w->mu);
	if (rv)
		return rv;
	if (fd >= 0) {
		if ((rv = win_fill(w, fd, seq, off, WAL_REC_HDR, limit)))
			goto bad;
		p = w->win + (off - w->win_off);
		if (wal_fmt_rec_peek(p, off, limit - off, &size, &why) !=
		    WALFMT_OK) {
			rv = SR_ECORRUPT;
			goto bad;
		}
		if ((rv = win_fill(w, fd, seq, off, (size_t)size, limit)))
			goto bad;
		p = w->win + (off - w->win_off);
	} else {
		wal_fmt_rec_fields(w->win, r); /* ours, in memory */
		return 0;
	}
	if (wal_fmt_rec_decode(p, off, size, r, &why) == WALFMT_OK)
		return 0;
	rv = SR_ECORRUPT;
bad:
	if (rv == SR_ECORRUPT) {
		wal_io_seg_name(name, sizeof(name), seq);
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: corruption in %s/%s at offset %llu: %s",
			    w->dir, name, (unsigned long long)off, why);
	}
	return rv;
}

int wal_read_term(struct sr_wal_group *g, sr_index i, sr_term *term)
{
	struct wal_rec r;
	int rv = fetch_record(g->wal, wal_entry_pos(g, i), &r);

	if (!rv &&
	    (r.kind != WAL_REC_ENTRY || r.index != i || r.group != g->id))
		rv = SR_ECORRUPT;
	*term = rv ? 0 : r.term;
	return rv;
}

int wal_read_entries(void *ctx, sr_index lo, size_t max_n, size_t max_bytes,
		     sr_entry *out, size_t *n_out)
{
	struct sr_wal_group *g = ctx;
	sr_wal *w = g->wal;
	size_t k = 0, used = 0;

	*n_out = 0;
	if (lo < g->first)
		return SR_ECOMPACTED;
	if (lo > g->last)
		return SR_ENOTFOUND;
	for (sr_index i = lo; k < max_n && i <= g->last; i++) {
		struct wal_rec r;
		int rv = fetch_record(w, wal_entry_pos(g, i), &r);

		if (!rv && (r.kind != WAL_REC_ENTRY || r.index != i ||
			    r.group != g->id))
			rv = SR_ECORRUPT;
		if (rv)
			return rv;
		if (k && used + r.len > max_bytes)
			break;
		if (used + r.len > w->rbuf_cap) {
			size_t cap = w->rbuf_cap ? w->rbuf_cap : 4096;
			unsigned char *p;

			while (cap < used + r.len)
				cap *= 2;
			p = wal_mem_realloc(w, w->rbuf, cap);
			if (!p)
				return SR_ENOMEM;
			w->rbuf = p;
			w->rbuf_cap = cap;
		}
		if (r.len)
			memcpy(w->rbuf + used, r.data, r.len);
		out[k].index = i;
		out[k].term = r.term;
		out[k].type = r.etype;
		out[k].len = r.len;
		out[k].data = (const void *)(uintptr_t)used; /* fixed below */
		used += r.len;
		k++;
	}
	for (size_t j = 0; j < k; j++)
		out[j].data = out[j].len ? w->rbuf + (uintptr_t)out[j].data
					 : NULL;
	*n_out = k;
	return 0;
}

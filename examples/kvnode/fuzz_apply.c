/*
 * fuzz_apply.c — libFuzzer target for what kvnode's state machine parses:
 * log entries (every operation, transactions, sessions, the time wrapper)
 * and snapshot images.
 *
 * The input is a sequence of entries, each a u16 length and its bytes.
 * Each run of up to SR_FSM_PREFETCH_MAX of them goes first through the
 * prefetch hint (on the first state machine only), as the engine does.
 * They are applied in order to two state machines whose hash tables use
 * different SipHash keys (so their buckets, and the order the expiry purge
 * meets keys, differ): every entry must give the same status and the same
 * reply bytes on both, and at the end both must hold the same live keys,
 * values and expiry times: apply is deterministic whatever the bytes.
 * Then the first state is saved as a snapshot, loaded back and compared,
 * and the raw input is also fed to the snapshot loader (which must refuse
 * or accept it without crashing).
 *
 * Build and run: make fuzz.
 */
#include <stdlib.h>
#include <string.h>

#include "kvfsm.c"
#include "kvmap.c"
#include "ops.c"
#include "resp.c"
#include "session.c"
#include "snapfork.c"
#include "txn.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_img {
	const uint8_t *p;
	size_t len;
	struct kv_buf out;
};

static int fz_write(void *ctx, const void *d, size_t len)
{
	struct fz_img *im = ctx;
	return kv_buf_put(&im->out, d, len) ? SR_ENOMEM : 0;
}

static int fz_read(void *ctx, uint64_t off, void *buf, size_t len,
		   size_t *n_out)
{
	struct fz_img *im = ctx;

	if (off >= im->len) {
		*n_out = 0;
		return 0;
	}
	if (len > im->len - off)
		len = (size_t)(im->len - off);
	memcpy(buf, im->p + off, len);
	*n_out = len;
	return 0;
}

/* Every live key of a is in b with the same value and expiry time. */
static void fz_same(const struct kv_map *a, const struct kv_map *b)
{
	size_t bucket = 0;
	const struct kv_ent *e = NULL;

	while ((e = kv_map_next(a, &bucket, e)) != NULL) {
		const struct kv_ent *f;
		if (!kv_map_live(a, e))
			continue;
		f = kv_map_get(b, kv_ent_key(e), e->klen);
		if (!f || f->vlen != e->vlen ||
		    memcmp(kv_ent_val(f), kv_ent_val(e), e->vlen) ||
		    kv_map_ttl(a, kv_ent_key(e), e->klen) !=
			    kv_map_ttl(b, kv_ent_key(e), e->klen))
			abort();
	}
	if (kv_map_live_count(a) != kv_map_live_count(b))
		abort();
}

static int fz_apply(struct kv_map *m, struct kv_map *ses, const void *d,
		    size_t len, struct kv_result **r)
{
	const void *in = d;
	size_t il = len;

	*r = NULL;
	if (il && ((const unsigned char *)in)[0] == KV_OP_TIMED &&
	    kv_timed_unwrap(m, &in, &il))
		return SR_EPROTO;
	if (il && ((const unsigned char *)in)[0] == KV_OP_SESSION)
		return kv_session_apply(m, ses, in, il, r);
	return kv_fsm_apply_cmd(m, in, il, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv_map a, b, sa = { 0 }, sb = { 0 }, back, bses;
	struct fz_img im = { .p = data, .len = size };
	size_t pos = 0;

	if (kv_map_init(&a) || kv_map_init(&b))
		abort();
	b.k0 ^= 0x5555555555555555ULL; /* a different bucket order */
	while (pos + 2 <= size) {
		sr_entry run[SR_FSM_PREFETCH_MAX];
		size_t n = 0;
		/* A run of entries, hinted (on a only) before it is applied,
		 * as the engine does: the hint must change nothing. */
		while (n < SR_FSM_PREFETCH_MAX && pos + 2 <= size) {
			size_t len = (size_t)data[pos] | (size_t)data[pos + 1]
								 << 8;
			pos += 2;
			if (len > size - pos)
				len = size - pos;
			run[n] = (sr_entry){ .index = n + 1,
					     .term = 1,
					     .type = SR_ENTRY_NORMAL,
					     .len = (uint32_t)len,
					     .data = data + pos };
			n++;
			pos += len;
		}
		prefetch_run(&a, run, n);
		for (size_t i = 0; i < n; i++) {
			struct kv_result *ra, *rb;
			int ca = fz_apply(&a, &sa, run[i].data, run[i].len,
					  &ra);
			int cb = fz_apply(&b, &sb, run[i].data, run[i].len,
					  &rb);
			if (ca != cb || (!ra) != (!rb) ||
			    (ra && (ra->code != rb->code ||
				    ra->num != rb->num || ra->len != rb->len ||
				    memcmp(ra->resp, rb->resp, ra->len))))
				abort();
			free(ra);
			free(rb);
		}
	}
	fz_same(&a, &b);
	fz_same(&b, &a);
	/* Snapshot round trip of the state reached. */
	if (kv_snap_save2(&a, &sa, fz_write, &im) == 0) {
		struct fz_img rd = { .p = (const uint8_t *)im.out.p,
				     .len = im.out.len };
		if (kv_snap_load2(&back, &bses, rd.len, fz_read, &rd))
			abort();
		fz_same(&a, &back);
		fz_same(&back, &a);
		kv_map_free(&back);
		kv_map_free(&bses);
	}
	kv_buf_free(&im.out);
	/* The raw input as a snapshot image. */
	if (kv_snap_load2(&back, &bses, size, fz_read, &im) == 0) {
		kv_map_free(&back);
		kv_map_free(&bses);
	}
	kv_map_free(&a);
	kv_map_free(&b);
	if (sa.b)
		kv_map_free(&sa);
	if (sb.b)
		kv_map_free(&sb);
	return 0;
}

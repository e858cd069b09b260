/*
 * bench/fuzz_repl_floor.c — libFuzzer target for repl_floor's client
 * parser (bench/repl_floor.c): the bytes arrive as one client's input, in
 * chunks whose sizes come from the first byte, and are parsed the way the
 * leader's loop does it, with each open batch committed (emptied, its SETs
 * answered) whenever the parser stops with work left; the first byte's
 * low bit picks the serial leader or --window (the batch is closed into
 * the client's ring, then committed).  Checks that the batch and the
 * reply buffer stay inside their bounds, that every SET is answered, and
 * that parsing always makes progress or closes the connection.
 */
#define REPL_FLOOR_FUZZ
#include "repl_floor.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct leader fz_leader;
static struct client fz_client;

static void fz_commit(struct leader *L, struct client *c)
{
	if (L->window && L->blen) {
		leader_close_batch(L); /* no follower is alive: none is sent */
		L->qlen = 0;	       /* as if the sync thread took it */
		L->done = L->seq;
	}
	L->blen = 0;
	client_answer(L, c);
	if (c->pend || c->owed || c->nwait)
		abort();
	if (c->outlen > OUT_CAP)
		abort();
	c->outlen = c->outoff = 0; /* as if the client read everything */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct leader *L = &fz_leader;
	struct client *c = &fz_client;
	size_t chunk, off = 0;

	if (!L->batch) {
		L->batch = malloc(sizeof(struct frame_hdr) + BATCH_MAX);
		L->queue = malloc(QUEUE_CAP);
		if (!L->batch || !L->queue)
			return 0;
		pthread_mutex_init(&L->mu, NULL);
		pthread_cond_init(&L->cv, NULL);
		L->cl[0] = c;
		L->ncl = 1;
	}
	L->blen = 0;
	memset(c, 0, offsetof(struct client, in));
	if (size == 0)
		return 0;
	L->window = data[0] & 1 ? 4 : 0;
	chunk = (size_t)(data[0] >> 1) * 37 + 1;
	data++;
	size--;
	while (!c->dead && (off < size || c->inlen)) {
		size_t n = size - off, room = IN_CAP - c->inlen;
		bool more;

		n = n < chunk ? n : chunk;
		n = n < room ? n : room;
		if (n)
			memcpy(c->in + c->inlen, data + off, n);
		c->inlen += n;
		off += n;
		more = client_parse(L, c);
		if (L->blen > BATCH_MAX || c->outlen > OUT_CAP)
			abort();
		fz_commit(L, c);
		if (!more && n == 0)
			break; /* an incomplete command at the end */
	}
	return 0;
}

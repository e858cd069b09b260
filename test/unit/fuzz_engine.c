/*
 * fuzz_engine.c — libFuzzer target: arbitrary message sequences, ticks,
 * proposals and reads fed to one engine (node 1 of a 3-voter cluster, on
 * the in-memory store).  Whatever peers claim, the engine must not crash,
 * read out of bounds, leak, or trip UBSan.
 */
#include <string.h>

#include <seshat/mem.h>
#include <seshat/raft.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

struct input {
	const unsigned char *p;
	size_t left;
};

static uint64_t take(struct input *in, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes && in->left; i++, in->left--)
		v |= (uint64_t)*in->p++ << (8 * i);
	return v;
}

/* The tag of the last read the engine forwarded: answers echo it, so the
 * fuzzer reaches the code that matches an answer to its read (tags are
 * hashed per start and would never be guessed). */
static uint64_t last_read_ctx;

static int drop_send(void *ctx, const sr_msg *m)
{
	(void)ctx;
	if (m->type == SR_MSG_READ_INDEX)
		last_read_ctx = m->u.read_index.ctx;
	return 0;
}

static int fsm_apply(void *ctx, const sr_entry *e, void **result)
{
	(void)ctx;
	(void)e;
	*result = NULL;
	return 0;
}

static int fsm_snapshot(void *ctx, sr_index index, sr_term term)
{
	sr_node **node = ctx;
	(void)index;
	(void)term;
	sr_node_snapshot_write(*node, "state", 5);
	return sr_node_snapshot_done(*node, 0);
}

static int fsm_restore(void *ctx, sr_index index, sr_term term)
{
	sr_node **node = ctx;
	char buf[64];
	size_t got = 0;
	(void)index;
	(void)term;
	return sr_node_snapshot_read(*node, 0, buf, sizeof(buf), &got);
}

static void mem_done(void *ctx, uint64_t token, int status)
{
	sr_node_storage_done(ctx, token, status);
}

static const sr_transport_ops net = { .send = drop_send };
static const sr_fsm_ops fsm = { .apply = fsm_apply,
				.snapshot = fsm_snapshot,
				.restore = fsm_restore };

/* Build a message from the input; entries and bytes live in buf. */
static void make_msg(struct input *in, sr_msg *m, sr_entry *ents,
		     unsigned char *bytes, size_t cap)
{
	memset(m, 0, sizeof(*m));
	m->type = (uint32_t)take(in, 1) % (SR_MSG_TYPE_MAX + 2);
	m->from = take(in, 1) % 5;
	m->to = 1;
	m->term = take(in, 1) % 8;
	switch (m->type) {
	case SR_MSG_VOTE:
		m->u.vote.last_index = take(in, 1);
		m->u.vote.last_term = take(in, 1) % 8;
		m->u.vote.pre = take(in, 1) & 1;
		m->u.vote.transfer = take(in, 1) & 1;
		break;
	case SR_MSG_VOTE_RESP:
		m->u.vote_resp.granted = take(in, 1) & 1;
		m->u.vote_resp.pre = take(in, 1) & 1;
		break;
	case SR_MSG_APPEND: {
		uint32_t n = (uint32_t)take(in, 1) % 8;
		size_t used = 0;
		m->u.append.prev_index = take(in, 1) % 40;
		m->u.append.prev_term = take(in, 1) % 8;
		m->u.append.commit = take(in, 1) % 48;
		m->u.append.seq = take(in, 2);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t len = (uint32_t)take(in, 1) % 24;
			ents[i].index = m->u.append.prev_index + 1 + i -
					(take(in, 1) == 0xff);
			ents[i].term = take(in, 1) % 8;
			ents[i].type = (uint32_t)take(in, 1) % 4;
			if (used + len > cap)
				len = 0;
			for (uint32_t b = 0; b < len; b++)
				bytes[used + b] = (unsigned char)take(in, 1);
			ents[i].len = len;
			ents[i].data = bytes + used;
			used += len;
		}
		m->u.append.entries = ents;
		m->u.append.n_entries = n;
		break;
	}
	case SR_MSG_APPEND_RESP:
		m->u.append_resp.success = take(in, 1) & 1;
		m->u.append_resp.index = take(in, 1) % 48;
		m->u.append_resp.hint_index = take(in, 1) % 48;
		m->u.append_resp.hint_term = take(in, 1) % 8;
		m->u.append_resp.seq = take(in, 2);
		break;
	case SR_MSG_SNAPSHOT: {
		uint32_t len = (uint32_t)take(in, 1) % 32;
		for (uint32_t b = 0; b < len && b < cap; b++)
			bytes[b] = (unsigned char)take(in, 1);
		m->u.snapshot.last_index = take(in, 1) % 48;
		m->u.snapshot.last_term = take(in, 1) % 8;
		m->u.snapshot.offset = take(in, 1) % 64;
		m->u.snapshot.done = take(in, 1) & 1;
		m->u.snapshot.conf = bytes;
		m->u.snapshot.conf_len = len / 2;
		m->u.snapshot.data = bytes + len / 2;
		m->u.snapshot.len = len - len / 2;
		break;
	}
	case SR_MSG_SNAPSHOT_RESP:
		m->u.snapshot_resp.last_index = take(in, 1) % 48;
		m->u.snapshot_resp.offset = take(in, 1) % 64;
		m->u.snapshot_resp.done = take(in, 1) & 1;
		m->u.snapshot_resp.rejected = take(in, 1) & 1;
		break;
	case SR_MSG_READ_INDEX:
		m->u.read_index.ctx = take(in, 2);
		break;
	case SR_MSG_READ_INDEX_RESP: {
		uint64_t sel = take(in, 1);
		m->u.read_index_resp.ctx = (sel & 1) ? last_read_ctx : sel % 4;
	}
		m->u.read_index_resp.index = take(in, 1) % 48;
		m->u.read_index_resp.status = (int32_t)(take(in, 1) % 3) - 1;
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct input in = { data, size };
	sr_mem_config mc = { .mode = SR_MEM_SYNC };
	sr_membership conf;
	sr_config cfg;
	sr_mem *mem = NULL;
	sr_node *node = NULL;
	uint64_t now = 0;
	sr_entry ents[8];
	unsigned char bytes[256];

	last_read_ctx = 0;

	if (sr_mem_create(&mc, &mem))
		return 0;
	sr_config_init(&cfg, 1);
	cfg.election_timeout_ms = 50;
	cfg.heartbeat_ms = 10;
	cfg.storage = sr_mem_ops();
	cfg.storage_ctx = mem;
	cfg.fsm = &fsm;
	cfg.fsm_ctx = &node;
	cfg.transport = &net;
	cfg.snapshot_threshold = 4;
	cfg.snapshot_trailing = 1;
	cfg.snapshot_chunk_bytes = 8;
	memset(&conf, 0, sizeof(conf));
	sr_membership_add(&conf, 1, SR_ROLE_VOTER, "a");
	sr_membership_add(&conf, 2, SR_ROLE_VOTER, "b");
	sr_membership_add(&conf, 3, SR_ROLE_VOTER, "c");
	sr_membership_add(&conf, 4, SR_ROLE_LEARNER, "d");
	if (sr_node_create(&cfg, &node))
		goto out;
	sr_mem_set_done(mem, mem_done, node);
	sr_node_bootstrap(node, &conf);
	if (sr_node_start(node, 0))
		goto out;
	while (in.left) {
		unsigned op = (unsigned)take(&in, 1) % 8;
		sr_msg m;
		switch (op) {
		case 0:
			now += take(&in, 1);
			sr_node_tick(node, now);
			break;
		case 1:
			sr_node_propose(node, "x", 1, NULL, NULL);
			break;
		case 2:
			sr_node_read_index(node, NULL);
			break;
		case 3:
			if (take(&in, 1) & 1) {
				sr_node_add(node, 5 + take(&in, 1) % 3, "e", 1);
			} else {
				/* several changes at once: joint consensus */
				sr_change ch[3];
				memset(ch, 0, sizeof(ch));
				for (int k = 0; k < 3; k++) {
					ch[k].op = 1 +
						   (uint32_t)take(&in, 1) % 6;
					ch[k].id = 1 + take(&in, 1) % 8;
					ch[k].addr = "j";
				}
				sr_node_change(node, ch, 1 + take(&in, 1) % 3,
					       NULL);
			}
			break;
		case 4:
			sr_node_transfer(node, take(&in, 1) % 5);
			break;
		default:
			make_msg(&in, &m, ents, bytes, sizeof(bytes));
			sr_node_step(node, &m);
			break;
		}
	}
out:
	sr_node_destroy(node);
	sr_mem_destroy(mem);
	return 0;
}

/*
 * test_ring.c — lib/internal/ring.h, the FIFO ring behind the engine's
 * queues: order across wrap-around and growth (the growth that must
 * unwrap a full ring whose head is not at 0), the sorted insert, the
 * power-of-two capacities, and a failed allocation that leaves the queue
 * as it was.
 */
#include "internal/ring.h"

#include "testlib.h"

struct q {
	struct ring r;
	uint64_t *v;
};

static int q_push(struct q *q, const sr_alloc *a, uint64_t x)
{
	if (ring_full(&q->r)) {
		uint64_t *nv = ring_grow(&q->r, q->v, sizeof(*nv), 4, a);
		if (!nv)
			return SR_ENOMEM;
		q->v = nv;
	}
	q->v[ring_push(&q->r)] = x;
	return 0;
}

static uint64_t q_pop(struct q *q)
{
	uint64_t x = q->v[ring_first(&q->r)];
	ring_pop(&q->r);
	return x;
}

static void q_free(struct q *q)
{
	free(q->v);
	memset(q, 0, sizeof(*q));
}

TEST(test_fifo_order_survives_wrap_and_growth)
{
	struct q q = { 0 };
	uint64_t next_in = 0, next_out = 0;

	/* Keep the head moving so each growth finds a wrapped, full ring. */
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 3; i++)
			CHECK_EQ(q_push(&q, NULL, next_in++), 0);
		CHECK_EQ(q_pop(&q), next_out++);
		CHECK(q.r.cap >= q.r.count);
		CHECK_EQ(q.r.cap & (q.r.cap - 1), 0u);
		for (uint32_t i = 0; i < q.r.count; i++)
			CHECK_EQ(q.v[ring_pos(&q.r, i)], next_out + i);
	}
	while (q.r.count)
		CHECK_EQ(q_pop(&q), next_out++);
	CHECK_EQ(next_out, next_in);
	q_free(&q);
}

TEST(test_first_capacity_rounds_up_to_a_power_of_two)
{
	struct ring r = { 0 };
	uint64_t *v = ring_grow(&r, NULL, sizeof(*v), 100, NULL);

	CHECK(v != NULL);
	CHECK_EQ(r.cap, 128u);
	CHECK_EQ(r.count, 0u);
	free(v);
}

TEST(test_sorted_insert_keeps_order_across_the_wrap)
{
	struct q q = { 0 };
	static const uint64_t late[] = { 15, 11, 19, 10, 13 };

	/* Move the head to the middle of the array first. */
	for (uint64_t x = 0; x < 6; x++)
		CHECK_EQ(q_push(&q, NULL, x), 0);
	for (int i = 0; i < 6; i++)
		q_pop(&q);
	for (uint64_t x = 12; x <= 18; x += 2)
		CHECK_EQ(q_push(&q, NULL, x), 0);
	for (size_t k = 0; k < sizeof(late) / sizeof(late[0]); k++) {
		uint32_t pos;
		if (ring_full(&q.r)) {
			uint64_t *nv = ring_grow(&q.r, q.v, sizeof(*nv), 4,
						 NULL);
			CHECK(nv != NULL);
			q.v = nv;
		}
		pos = q.r.count;
		while (pos > 0 && q.v[ring_pos(&q.r, pos - 1)] > late[k])
			pos--;
		q.v[ring_insert(&q.r, q.v, sizeof(*q.v), pos)] = late[k];
	}
	{
		static const uint64_t want[] = { 10, 11, 12, 13, 14,
						 15, 16, 18, 19 };
		CHECK_EQ(q.r.count, 9u);
		for (uint32_t i = 0; i < q.r.count; i++)
			CHECK_EQ(q.v[ring_pos(&q.r, i)], want[i]);
	}
	q_free(&q);
}

static int fail_alloc;

static void *hook_alloc(void *ctx, size_t n)
{
	(void)ctx;
	return fail_alloc ? NULL : malloc(n);
}

static void hook_release(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

TEST(test_a_failed_growth_leaves_the_queue_intact)
{
	sr_alloc a = { 0 };
	struct q q = { 0 };

	a.malloc = hook_alloc;
	a.free = hook_release;
	for (uint64_t x = 0; x < 4; x++)
		CHECK_EQ(q_push(&q, &a, x), 0);
	q_pop(&q);
	CHECK_EQ(q_push(&q, &a, 4), 0); /* full, and wrapped */
	fail_alloc = 1;
	CHECK_EQ(q_push(&q, &a, 5), SR_ENOMEM);
	fail_alloc = 0;
	CHECK_EQ(q.r.count, 4u);
	CHECK_EQ(q.r.cap, 4u);
	for (uint64_t x = 1; x <= 4; x++)
		CHECK_EQ(q_pop(&q), x);
	CHECK_EQ(q.r.count, 0u);
	q_free(&q);
}

TEST(test_unpush_takes_back_the_last_element)
{
	struct q q = { 0 };

	CHECK_EQ(q_push(&q, NULL, 1), 0);
	CHECK_EQ(q_push(&q, NULL, 2), 0);
	ring_unpush(&q.r);
	CHECK_EQ(q_push(&q, NULL, 3), 0);
	CHECK_EQ(q_pop(&q), 1u);
	CHECK_EQ(q_pop(&q), 3u);
	q_free(&q);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

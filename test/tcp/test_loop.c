/*
 * test_loop.c — the epoll event loop (include/seshat/loop.h).
 *
 * Watchers on pipes, unwatching inside a callback (the pending event of
 * the unwatched fd must not be delivered), timers in deadline order and
 * insertion order, cancellation, a timer that re-adds itself with delay 0
 * (must not spin inside one iteration), deferred calls and their
 * cancellation, the blocking timeout, run/stop, polling the loop's fd
 * from outside, and that every allocation goes through the hooks and is
 * returned.
 */
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "count_alloc.h"
#include "seshat/loop.h"
#include "testlib.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void make_pipe(int p[2])
{
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC))
		abort(); /* the test's own setup, not input */
}

struct rec {
	int calls;
	int events;
	int order[16];
	int n;
	sr_loop *loop;
	int other_fd;
};

static void on_fd(sr_loop *loop, int fd, int events, void *ctx)
{
	struct rec *r = ctx;
	char buf[64];
	(void)loop;
	r->calls++;
	r->events |= events;
	if (events & SR_LOOP_READ)
		while (read(fd, buf, sizeof(buf)) > 0)
			;
}

TEST(test_read_and_write_interest)
{
	sr_loop *l;
	int p[2];
	struct rec r = { 0 };
	CHECK_EQ(sr_loop_create(NULL, &l), 0);
	make_pipe(p);
	CHECK_EQ(sr_loop_watch(l, p[0], SR_LOOP_READ, on_fd, &r), 0);
	CHECK_EQ(sr_loop_interest(l, p[0]), SR_LOOP_READ);
	CHECK_EQ(sr_loop_run_once(l, 0), 0); /* nothing yet */
	CHECK_EQ(write(p[1], "x", 1), 1);
	CHECK_EQ(sr_loop_run_once(l, 1000), 1);
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(r.events, SR_LOOP_READ);
	/* a pipe's write end is writable at once */
	struct rec w = { 0 };
	CHECK_EQ(sr_loop_watch(l, p[1], SR_LOOP_WRITE, on_fd, &w), 0);
	CHECK_EQ(sr_loop_run_once(l, 1000), 1);
	CHECK_EQ(w.events, SR_LOOP_WRITE);
	sr_loop_unwatch(l, p[1]);
	CHECK_EQ(sr_loop_interest(l, p[1]), 0);
	CHECK_EQ(sr_loop_run_once(l, 0), 0);
	CHECK_EQ(w.calls, 1);
	/* errors */
	CHECK_EQ(sr_loop_watch(l, -1, SR_LOOP_READ, on_fd, &r), SR_EINVAL);
	sr_loop_unwatch(l, 12345); /* not watched: no-op */
	sr_loop_destroy(l);
	close(p[0]);
	close(p[1]);
}

static void unwatch_other(sr_loop *loop, int fd, int events, void *ctx)
{
	struct rec *r = ctx;
	char buf[8];
	(void)events;
	r->calls++;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	sr_loop_unwatch(loop, r->other_fd);
}

TEST(test_unwatch_in_a_callback_drops_the_pending_event)
{
	sr_loop *l;
	int a[2], b[2];
	struct rec ra = { 0 }, rb = { 0 };
	CHECK_EQ(sr_loop_create(NULL, &l), 0);
	make_pipe(a);
	make_pipe(b);
	ra.other_fd = b[0];
	rb.other_fd = a[0];
	CHECK_EQ(sr_loop_watch(l, a[0], SR_LOOP_READ, unwatch_other, &ra), 0);
	CHECK_EQ(sr_loop_watch(l, b[0], SR_LOOP_READ, unwatch_other, &rb), 0);
	CHECK_EQ(write(a[1], "x", 1), 1);
	CHECK_EQ(write(b[1], "x", 1), 1);
	/* both ready in one epoll batch: whichever runs first unwatches the
	 * other, whose event must then be skipped */
	CHECK_EQ(sr_loop_run_once(l, 1000), 1);
	CHECK_EQ(ra.calls + rb.calls, 1);
	sr_loop_destroy(l);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

static void on_timer(sr_loop *loop, uint64_t id, void *ctx)
{
	struct rec *r = ctx;
	(void)loop;
	(void)id;
	if (r->n < 16)
		r->order[r->n++] = r->calls;
	r->calls++;
}

struct tagged {
	struct rec *r;
	int tag;
};

static void on_tagged(sr_loop *loop, uint64_t id, void *ctx)
{
	struct tagged *t = ctx;
	(void)loop;
	(void)id;
	t->r->order[t->r->n++] = t->tag;
}

TEST(test_timers_fire_in_deadline_then_insertion_order)
{
	sr_loop *l;
	struct rec r = { 0 };
	struct tagged t[5] = {
		{ &r, 30 }, { &r, 10 }, { &r, 20 }, { &r, 11 }, { &r, 0 }
	};
	CHECK_EQ(sr_loop_create(NULL, &l), 0);
	CHECK_EQ(sr_loop_timeout_ms(l), -1);
	uint64_t start = now_ms();
	sr_loop_timer_add(l, 30, on_tagged, &t[0], NULL);
	sr_loop_timer_add(l, 10, on_tagged, &t[1], NULL);
	sr_loop_timer_add(l, 20, on_tagged, &t[2], NULL);
	sr_loop_timer_add(l, 10, on_tagged, &t[3], NULL);
	uint64_t id;
	sr_loop_timer_add(l, 15, on_tagged, &t[4], &id);
	CHECK(id != 0);
	CHECK_EQ(sr_loop_timer_cancel(l, id), 0);
	CHECK_EQ(sr_loop_timer_cancel(l, id), SR_ENOTFOUND);
	int to = sr_loop_timeout_ms(l);
	CHECK(to >= 0 && to <= 10);
	while (r.n < 4 && now_ms() - start < 2000)
		sr_loop_run_once(l, -1);
	CHECK_EQ(r.n, 4);
	CHECK_EQ(r.order[0], 10);
	CHECK_EQ(r.order[1], 11);
	CHECK_EQ(r.order[2], 20);
	CHECK_EQ(r.order[3], 30);
	CHECK(now_ms() - start >= 29);
	CHECK_EQ(sr_loop_timeout_ms(l), -1);
	sr_loop_destroy(l);
}

static void rearm_zero(sr_loop *loop, uint64_t id, void *ctx)
{
	struct rec *r = ctx;
	(void)id;
	r->calls++;
	sr_loop_timer_add(loop, 0, rearm_zero, r, NULL);
}

TEST(test_a_timer_readding_itself_does_not_spin)
{
	sr_loop *l;
	struct rec r = { 0 };
	CHECK_EQ(sr_loop_create(NULL, &l), 0);
	sr_loop_timer_add(l, 0, rearm_zero, &r, NULL);
	CHECK_EQ(sr_loop_run_once(l, 0), 1);
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(sr_loop_run_once(l, 0), 1);
	CHECK_EQ(r.calls, 2);
	sr_loop_destroy(l); /* drops the pending timer */
}

static void defer_count(sr_loop *loop, void *ctx)
{
	(void)loop;
	((struct rec *)ctx)->calls++;
}

static uint64_t stamp;

static void defer_stamp(sr_loop *loop, void *ctx)
{
	(void)loop;
	((struct rec *)ctx)->calls++;
	stamp = now_ms();
}

static void defer_again(sr_loop *loop, void *ctx)
{
	struct rec *r = ctx;
	r->calls++;
	if (r->calls < 3)
		sr_loop_defer(loop, defer_again, r);
}

static void timer_defers(sr_loop *loop, uint64_t id, void *ctx)
{
	(void)id;
	sr_loop_defer(loop, defer_count, ctx);
}

TEST(test_deferred_calls)
{
	sr_loop *l;
	struct rec r = { 0 }, c = { 0 };
	CHECK_EQ(sr_loop_create(NULL, &l), 0);
	sr_loop_defer(l, defer_stamp, &r);
	CHECK_EQ(sr_loop_timeout_ms(l), 0);
	uint64_t start = now_ms();
	CHECK_EQ(sr_loop_run_once(l, 200), 1);
	CHECK(stamp - start < 100); /* ran before the loop slept */
	CHECK(now_ms() - start >= 150);
	CHECK_EQ(r.calls, 1);
	/* a deferred call queued by a deferred call waits a round */
	r.calls = 0;
	sr_loop_defer(l, defer_again, &r);
	sr_loop_run_once(l, 0);
	CHECK_EQ(r.calls, 2); /* before the poll, and after it */
	sr_loop_run_once(l, 0);
	CHECK_EQ(r.calls, 3);
	/* queued from a timer: runs in the same iteration */
	r.calls = 0;
	sr_loop_timer_add(l, 0, timer_defers, &r, NULL);
	sr_loop_run_once(l, 0);
	CHECK_EQ(r.calls, 1);
	/* cancelled */
	sr_loop_defer(l, defer_count, &c);
	sr_loop_defer(l, defer_count, &r);
	sr_loop_defer_cancel(l, defer_count, &c);
	sr_loop_run_once(l, 0);
	CHECK_EQ(c.calls, 0);
	CHECK_EQ(r.calls, 2);
	sr_loop_destroy(l);
}

TEST(test_run_once_waits_for_the_timeout)
{
	sr_loop *l;
	CHECK_EQ(sr_loop_create(NULL, &l), 0);
	uint64_t start = now_ms();
	CHECK_EQ(sr_loop_run_once(l, 50), 0);
	uint64_t took = now_ms() - start;
	CHECK(took >= 45 && took < 1000);
	CHECK(sr_loop_now_ms(l) >= start + 45);
	sr_loop_destroy(l);
}

static void stop_it(sr_loop *loop, uint64_t id, void *ctx)
{
	(void)id;
	((struct rec *)ctx)->calls++;
	sr_loop_stop(loop);
}

TEST(test_run_until_stopped)
{
	sr_loop *l;
	struct rec r = { 0 };
	CHECK_EQ(sr_loop_create(NULL, &l), 0);
	sr_loop_timer_add(l, 20, stop_it, &r, NULL);
	CHECK_EQ(sr_loop_run(l), 0);
	CHECK_EQ(r.calls, 1);
	sr_loop_destroy(l);
}

TEST(test_loop_fd_is_pollable_from_another_loop)
{
	sr_loop *l;
	int p[2];
	struct rec r = { 0 };
	CHECK_EQ(sr_loop_create(NULL, &l), 0);
	make_pipe(p);
	sr_loop_watch(l, p[0], SR_LOOP_READ, on_fd, &r);
	struct pollfd pfd = { .fd = sr_loop_fd(l), .events = POLLIN };
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	CHECK_EQ(write(p[1], "x", 1), 1);
	CHECK_EQ(poll(&pfd, 1, 1000), 1);
	CHECK_EQ(sr_loop_run_once(l, 0), 1);
	CHECK_EQ(r.calls, 1);
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	sr_loop_destroy(l);
	close(p[0]);
	close(p[1]);
}

TEST(test_every_allocation_goes_through_the_hooks)
{
	struct count_alloc ca;
	count_alloc_init(&ca);
	sr_loop *l;
	int p[2];
	struct rec r = { 0 };
	CHECK_EQ(sr_loop_create(&ca.hooks, &l), 0);
	make_pipe(p);
	sr_loop_watch(l, p[0], SR_LOOP_READ, on_fd, &r);
	for (int i = 0; i < 100; i++)
		sr_loop_timer_add(l, 1000 + (uint64_t)i, on_timer, &r, NULL);
	for (int i = 0; i < 40; i++)
		sr_loop_defer(l, defer_count, &r);
	CHECK(ca.blocks >= 4);
	sr_loop_run_once(l, 0);
	CHECK_EQ(r.calls, 40);
	sr_loop_destroy(l);
	CHECK_EQ(ca.live, 0);
	CHECK_EQ(ca.blocks, 0);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

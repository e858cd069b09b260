/*
 * loop.c — the epoll event loop (include/seshat/loop.h).
 *
 * State: an epoll fd; a table indexed by fd with each watched fd's
 * interest and callback (grown to the highest fd seen); a binary min-heap
 * of timers ordered by (due time, id); a queue of deferred calls.
 *
 * Dispatch goes through the fd table, not through pointers stored in the
 * epoll events, so a callback may unwatch or close any fd (its own
 * included) while the rest of the batch is being dispatched: an event for
 * an fd whose interest is now 0 is skipped.  Timers fire from a heap that
 * callbacks may modify; a timer added while timers fire (even with delay
 * 0) waits for the next iteration, so a timer that re-adds itself cannot
 * spin the loop.  Deferred calls are drained from a snapshot for the same
 * reason.
 *
 * Failure modes: allocation failures are returned to the caller and leave
 * the loop unchanged; epoll_ctl failing for an fd (a regular file, say)
 * gives SR_EIO; epoll_wait failing other than by EINTR gives SR_EIO.
 */
#include "seshat/loop.h"
#include "internal/alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 64

struct loop_fd {
	int interest;
	sr_loop_fd_fn fn;
	void *ctx;
};

struct loop_timer {
	uint64_t when;
	uint64_t id;
	sr_loop_timer_fn fn;
	void *ctx;
};

struct loop_defer {
	sr_loop_defer_fn fn;
	void *ctx;
};

struct sr_loop {
	int epfd;
	const sr_alloc *alloc;
	uint64_t now;
	int stop;

	struct loop_fd *fds;
	int nfds; /* entries in fds[] */

	struct loop_timer *heap;
	size_t n_timers, cap_timers;
	uint64_t next_id;

	struct loop_defer *defers;
	size_t n_defers, cap_defers;
	struct loop_defer *running; /* snapshot being drained */
	size_t n_running, cap_running;
};

/* ------------------------------------------------------------------ */
/* Allocation (through the hooks: internal/alloc.h)                   */
/* ------------------------------------------------------------------ */

/* Grow an array of `size`-byte items so that it holds at least n. */
static int loop_grow(const sr_alloc *a, void **arr, size_t *cap, size_t n,
		     size_t size)
{
	if (n <= *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	while (c < n)
		c *= 2;
	void *p = hook_realloc(a, *arr, c * size);
	if (!p)
		return SR_ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

static uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

SR_API int sr_loop_create(const sr_alloc *alloc, sr_loop **out)
{
	sr_loop *l = hook_malloc(alloc, sizeof(*l));
	if (!l)
		return SR_ENOMEM;
	memset(l, 0, sizeof(*l));
	l->alloc = alloc;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		hook_free(alloc, l);
		return SR_EIO;
	}
	l->now = clock_ms();
	l->next_id = 1;
	*out = l;
	return 0;
}

SR_API void sr_loop_destroy(sr_loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	hook_free(l->alloc, l->fds);
	hook_free(l->alloc, l->heap);
	hook_free(l->alloc, l->defers);
	hook_free(l->alloc, l->running);
	hook_free(l->alloc, l);
}

/* ------------------------------------------------------------------ */
/* Watchers                                                           */
/* ------------------------------------------------------------------ */

static uint32_t epoll_mask(int events)
{
	return ((events & SR_LOOP_READ) ? EPOLLIN : 0) |
	       ((events & SR_LOOP_WRITE) ? EPOLLOUT : 0);
}

SR_API int sr_loop_watch(sr_loop *l, int fd, int events, sr_loop_fd_fn fn,
			 void *ctx)
{
	if (fd < 0)
		return SR_EINVAL;
	events &= SR_LOOP_READ | SR_LOOP_WRITE;
	if (!events) {
		sr_loop_unwatch(l, fd);
		return 0;
	}
	if (fd >= l->nfds) {
		size_t cap = (size_t)l->nfds;
		int rc = loop_grow(l->alloc, (void **)&l->fds, &cap,
				   (size_t)fd + 1, sizeof(*l->fds));
		if (rc)
			return rc;
		memset(l->fds + l->nfds, 0,
		       (cap - (size_t)l->nfds) * sizeof(*l->fds));
		l->nfds = (int)cap;
	}
	struct loop_fd *w = &l->fds[fd];
	if (w->interest != events) {
		struct epoll_event ev = { .events = epoll_mask(events) };
		ev.data.fd = fd;
		int op = w->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
		if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
			return SR_EIO;
	}
	w->interest = events;
	w->fn = fn;
	w->ctx = ctx;
	return 0;
}

SR_API void sr_loop_unwatch(sr_loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds || !l->fds[fd].interest)
		return;
	/* May fail if the fd was closed already; the kernel dropped it. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
}

SR_API int sr_loop_interest(const sr_loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds)
		return 0;
	return l->fds[fd].interest;
}

/* ------------------------------------------------------------------ */
/* Timers: a binary min-heap on (when, id)                            */
/* ------------------------------------------------------------------ */

static int timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void heap_swap(struct loop_timer *h, size_t i, size_t j)
{
	struct loop_timer t = h[i];
	h[i] = h[j];
	h[j] = t;
}

static void heap_up(struct loop_timer *h, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(&h[i], &h[parent]))
			break;
		heap_swap(h, i, parent);
		i = parent;
	}
}

static void heap_down(struct loop_timer *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && timer_before(&h[l], &h[m]))
			m = l;
		if (r < n && timer_before(&h[r], &h[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

/* Remove heap slot i. */
static void heap_remove(sr_loop *l, size_t i)
{
	l->n_timers--;
	if (i == l->n_timers)
		return;
	l->heap[i] = l->heap[l->n_timers];
	heap_up(l->heap, i);
	heap_down(l->heap, l->n_timers, i);
}

SR_API int sr_loop_timer_add(sr_loop *l, uint64_t delay_ms, sr_loop_timer_fn fn,
			     void *ctx, uint64_t *id_out)
{
	int rc = loop_grow(l->alloc, (void **)&l->heap, &l->cap_timers,
			   l->n_timers + 1, sizeof(*l->heap));
	if (rc)
		return rc;
	struct loop_timer *t = &l->heap[l->n_timers];
	sr_loop_update_now(l); /* "from now" means now, not the last wakeup */
	t->when = l->now + delay_ms;
	if (t->when < l->now)
		t->when = UINT64_MAX; /* overflow: never */
	t->id = l->next_id++;
	t->fn = fn;
	t->ctx = ctx;
	if (id_out)
		*id_out = t->id;
	heap_up(l->heap, l->n_timers++);
	return 0;
}

SR_API int sr_loop_timer_cancel(sr_loop *l, uint64_t id)
{
	for (size_t i = 0; i < l->n_timers; i++) {
		if (l->heap[i].id == id) {
			heap_remove(l, i);
			return 0;
		}
	}
	return SR_ENOTFOUND;
}

/* Fire the timers due now that existed before this call. */
static int fire_timers(sr_loop *l)
{
	uint64_t last_id = l->next_id - 1;
	int calls = 0;

	while (l->n_timers && l->heap[0].when <= l->now &&
	       l->heap[0].id <= last_id) {
		struct loop_timer t = l->heap[0];
		heap_remove(l, 0);
		t.fn(l, t.id, t.ctx);
		calls++;
	}
	return calls;
}

/* ------------------------------------------------------------------ */
/* Deferred calls                                                     */
/* ------------------------------------------------------------------ */

SR_API int sr_loop_defer(sr_loop *l, sr_loop_defer_fn fn, void *ctx)
{
	int rc = loop_grow(l->alloc, (void **)&l->defers, &l->cap_defers,
			   l->n_defers + 1, sizeof(*l->defers));
	if (rc)
		return rc;
	l->defers[l->n_defers].fn = fn;
	l->defers[l->n_defers].ctx = ctx;
	l->n_defers++;
	return 0;
}

/*
 * Run the calls queued so far.  They are swapped into `running` first so
 * that calls queued meanwhile wait for the next round.
 */
static int run_defers(sr_loop *l)
{
	size_t n = l->n_defers;
	if (!n)
		return 0;
	struct loop_defer *q = l->defers;
	size_t cap = l->cap_defers;
	l->defers = l->running;
	l->cap_defers = l->cap_running;
	l->n_defers = 0;
	l->running = q;
	l->cap_running = cap;
	l->n_running = n;
	int calls = 0;
	/* q[i].fn is re-read each time: a call may cancel a later one. */
	for (size_t i = 0; i < n; i++) {
		if (q[i].fn) {
			sr_loop_defer_fn fn = q[i].fn;
			q[i].fn = NULL;
			fn(l, q[i].ctx);
			calls++;
		}
	}
	l->n_running = 0;
	return calls;
}

static void cancel_in(struct loop_defer *q, size_t n, sr_loop_defer_fn fn,
		      void *ctx)
{
	for (size_t i = 0; i < n; i++)
		if (q[i].fn == fn && q[i].ctx == ctx)
			q[i].fn = NULL;
}

SR_API void sr_loop_defer_cancel(sr_loop *l, sr_loop_defer_fn fn, void *ctx)
{
	cancel_in(l->defers, l->n_defers, fn, ctx);
	cancel_in(l->running, l->n_running, fn, ctx);
}

/* ------------------------------------------------------------------ */
/* Running                                                            */
/* ------------------------------------------------------------------ */

SR_API uint64_t sr_loop_now_ms(const sr_loop *l)
{
	return l->now;
}

SR_API uint64_t sr_loop_update_now(sr_loop *l)
{
	uint64_t t = clock_ms();
	if (t > l->now)
		l->now = t;
	return l->now;
}

SR_API int sr_loop_fd(const sr_loop *l)
{
	return l->epfd;
}

SR_API int sr_loop_timeout_ms(sr_loop *l)
{
	if (l->n_defers)
		return 0;
	if (!l->n_timers)
		return -1;
	uint64_t now = sr_loop_update_now(l);
	if (l->heap[0].when <= now)
		return 0;
	uint64_t d = l->heap[0].when - now;
	return d > INT32_MAX ? INT32_MAX : (int)d;
}

/* Deliver one epoll event through the fd table. */
static int dispatch(sr_loop *l, const struct epoll_event *ev)
{
	int fd = ev->data.fd;
	if (fd < 0 || fd >= l->nfds || !l->fds[fd].interest)
		return 0; /* unwatched by an earlier callback */
	struct loop_fd *w = &l->fds[fd];
	int events = 0;
	if (ev->events & (EPOLLERR | EPOLLHUP))
		events = w->interest;
	if (ev->events & EPOLLIN)
		events |= SR_LOOP_READ;
	if (ev->events & EPOLLOUT)
		events |= SR_LOOP_WRITE;
	events &= w->interest;
	if (!events)
		return 0;
	w->fn(l, fd, events, w->ctx);
	return 1;
}

SR_API int sr_loop_run_once(sr_loop *l, int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int calls;

	sr_loop_update_now(l);
	calls = run_defers(l);

	int wait = sr_loop_timeout_ms(l);
	if (timeout_ms >= 0 && (wait < 0 || wait > timeout_ms))
		wait = timeout_ms;
	int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, wait);
	if (n < 0) {
		if (errno != EINTR)
			return SR_EIO;
		n = 0;
	}
	sr_loop_update_now(l);
	for (int i = 0; i < n; i++)
		calls += dispatch(l, &evs[i]);
	calls += fire_timers(l);
	calls += run_defers(l);
	return calls;
}

SR_API int sr_loop_run(sr_loop *l)
{
	l->stop = 0;
	while (!l->stop) {
		int rc = sr_loop_run_once(l, -1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

SR_API void sr_loop_stop(sr_loop *l)
{
	l->stop = 1;
}

/*
 * seshat/loop.h — a small epoll event loop (Linux).
 *
 * Enough for the library's own I/O and for a host that has no loop of its
 * own: file descriptor watchers (read/write interest, level-triggered),
 * one-shot timers in milliseconds, deferred calls that run before the loop
 * next sleeps, and a run-once call with a timeout.  The TCP transport, the
 * WAL's completion eventfd and a key-value server's client sockets share
 * one loop on one thread.
 *
 * One iteration of sr_loop_run_once():
 *   1. run the deferred calls queued so far;
 *   2. wait for fd events, at most until the next timer, the timeout, or
 *      not at all if deferred calls are pending;
 *   3. call the watchers whose fds are ready;
 *   4. fire the timers that are due;
 *   5. run the deferred calls queued by 3 and 4.
 * So work queued with sr_loop_defer() from a watcher (flushing a socket
 * after a batch of messages, say) happens in the same iteration, and work
 * queued from outside the loop happens before it next sleeps.
 *
 * The loop is single-threaded: every function must be called on the
 * thread that runs it.  Every function may be called from inside a
 * watcher, timer or deferred call, except sr_loop_destroy().
 *
 * Watchers may see a spurious readiness: a callback that closes an fd
 * which is then reused by a new watcher within the same iteration can
 * leave an event for the old fd that is delivered to the new watcher.
 * Non-blocking fds (EAGAIN) make this harmless; use them.
 *
 * Host with its own loop: sr_loop_fd() is the epoll fd, readable whenever
 * a watched fd is ready; sr_loop_timeout_ms() says when the loop needs to
 * run next.  Watch the first, sleep at most the second, then call
 * sr_loop_run_once(loop, 0).
 */
#ifndef SESHAT_LOOP_H
#define SESHAT_LOOP_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sr_loop sr_loop;

enum { SR_LOOP_READ = 1, SR_LOOP_WRITE = 2 };

/*
 * An fd is ready.  events is a subset of the interest it was watched with
 * (an error or hang-up on the fd is reported as every event in the
 * interest, so the callback finds it on its next read or write).
 */
typedef void (*sr_loop_fd_fn)(sr_loop *loop, int fd, int events, void *ctx);
/* A timer is due (it is already removed; re-add it for a periodic one). */
typedef void (*sr_loop_timer_fn)(sr_loop *loop, uint64_t id, void *ctx);
/* A deferred call. */
typedef void (*sr_loop_defer_fn)(sr_loop *loop, void *ctx);

/*
 * Create a loop; allocations go through alloc (NULL: libc; the hooks must
 * outlive the loop).  Errors: SR_ENOMEM, SR_EIO (epoll_create1 failed).
 */
SR_API int sr_loop_create(const sr_alloc *alloc, sr_loop **out);

/*
 * Destroy the loop.  Watched fds are not closed; timers and deferred calls
 * are dropped without being called.  Not from inside a callback.
 */
SR_API void sr_loop_destroy(sr_loop *loop);

/*
 * Watch fd for `events` (SR_LOOP_READ | SR_LOOP_WRITE) and call fn(ctx)
 * when it is ready; replaces any earlier interest and callback for fd.
 * events 0 is sr_loop_unwatch().  Errors: SR_EINVAL (fd < 0),
 * SR_ENOMEM, SR_EIO (epoll_ctl refused the fd).
 */
SR_API int sr_loop_watch(sr_loop *loop, int fd, int events, sr_loop_fd_fn fn,
			 void *ctx);

/* Stop watching fd (before closing it).  No-op if it is not watched. */
SR_API void sr_loop_unwatch(sr_loop *loop, int fd);

/* The interest fd is watched with, 0 if none. */
SR_API int sr_loop_interest(const sr_loop *loop, int fd);

/*
 * Call fn(ctx) once, delay_ms from now (the clock is re-read).  *id_out
 * (if not NULL) names the timer for sr_loop_timer_cancel().  Ids are
 * never 0 and never reused.  Timers due at the same time fire in the
 * order they were added.
 * Errors: SR_ENOMEM.  Sized for tens to a few hundred timers (cancel is
 * linear).
 */
SR_API int sr_loop_timer_add(sr_loop *loop, uint64_t delay_ms,
			     sr_loop_timer_fn fn, void *ctx, uint64_t *id_out);

/* Cancel a timer; SR_ENOTFOUND if it fired or was cancelled already. */
SR_API int sr_loop_timer_cancel(sr_loop *loop, uint64_t id);

/*
 * Call fn(ctx) before the loop next sleeps (see the iteration above).
 * A call queued while deferred calls run waits for the next round.
 * Errors: SR_ENOMEM.
 */
SR_API int sr_loop_defer(sr_loop *loop, sr_loop_defer_fn fn, void *ctx);

/*
 * Drop every pending deferred call of fn with ctx (an object that queued
 * work and is being destroyed).  Safe from inside deferred calls.
 */
SR_API void sr_loop_defer_cancel(sr_loop *loop, sr_loop_defer_fn fn, void *ctx);

/*
 * One iteration, waiting at most timeout_ms for something to happen (-1:
 * until an event or timer; 0: do not block).  Returns the number of
 * watcher, timer and deferred calls made, or SR_EIO if epoll_wait failed
 * (EINTR is not a failure: it returns what was done).
 */
SR_API int sr_loop_run_once(sr_loop *loop, int timeout_ms);

/* Run iterations until sr_loop_stop() is called.  Returns 0 or SR_EIO. */
SR_API int sr_loop_run(sr_loop *loop);

/* Make sr_loop_run() return after the current iteration. */
SR_API void sr_loop_stop(sr_loop *loop);

/*
 * The loop's clock: CLOCK_MONOTONIC in milliseconds, read at the start
 * of each iteration and after waiting (timers compare against it).
 */
SR_API uint64_t sr_loop_now_ms(const sr_loop *loop);

/* Re-read the clock now (for a caller that spent time outside the loop). */
SR_API uint64_t sr_loop_update_now(sr_loop *loop);

/* The epoll fd, for a host that polls this loop from its own loop. */
SR_API int sr_loop_fd(const sr_loop *loop);

/*
 * Milliseconds until the loop needs to run even if its fd is quiet: 0 if
 * deferred calls are pending or a timer is due, -1 if there is no timer.
 */
SR_API int sr_loop_timeout_ms(sr_loop *loop);

#ifdef __cplusplus
}
#endif
#endif

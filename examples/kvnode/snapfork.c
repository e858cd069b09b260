/*
 * snapfork.c — snapshots serialized in the background by a forked child.
 *
 * Serializing the whole map on the node's loop stopped the node for as
 * long as that took (30-90 ms per 100,000 keys on the development VM,
 * and every node reaches a snapshot threshold at about the same index).
 * fork() gives a child a copy-on-write image of the state exactly as of
 * the index the engine asked for; the child serializes it into a pipe
 * and exits, while the parent goes on applying later entries.  The
 * parent reads the pipe on its loop, at most SNAPFORK_READ bytes per
 * wake-up, and hands the bytes to the engine (sr_node_snapshot_write),
 * which writes them to the store; at the end of the stream it reaps the
 * child and completes the snapshot only if the child exited with status
 * 0 (the image also ends with its own CRC, which restore checks).
 *
 * What can go wrong, and what happens:
 *  - fork() fails (memory, process limits): the snapshot is serialized
 *    on the loop, as without fork.
 *  - The child dies or fails: the snapshot is abandoned (the store drops
 *    the partial file) and the next one is taken on the loop, so a child
 *    that cannot finish (killed for memory, say) does not turn into a
 *    fork per loop iteration.
 *  - The engine drops the snapshot meanwhile (a leader's snapshot
 *    superseded it): its writes fail with SR_ESTATE, or a restore or a
 *    new snapshot arrives first; the child is killed either way.
 *  - The parent dies: the child gets SIGKILL (PR_SET_PDEATHSIG) and, in
 *    any case, EPIPE on its next write.
 * The child closes every descriptor but the pipe, so that sockets the
 * parent closes meanwhile (clients, peers, listeners) really close.
 *
 * Memory: pages the parent writes while the child runs are copied, at
 * most the size of the state.  Time: the child runs at nice 10, so on a
 * busy machine a snapshot takes longer to be stored than on the loop
 * (about 1.8x on the 2-core development VM), while the node serves.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvnode.h"

/* Bytes moved from the pipe to the store per wake-up of the loop: small
 * enough that requests in between wait little for it. */
#define SNAPFORK_READ (256u << 10)

static void fsm_log(struct kv_fsm *f, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fsm_log(struct kv_fsm *f, int level, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (!f->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	f->log(f->log_ctx, level, line);
}

uint64_t kv_snap_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the child ---------------------------------------------------- */

static int child_write(void *ctx, const void *data, size_t len)
{
	int fd = *(int *)ctx;
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Every descriptor from 3 on except keep. */
static void close_others(int keep)
{
#ifdef SYS_close_range
	if ((keep <= 3 ||
	     syscall(SYS_close_range, 3u, (unsigned)keep - 1u, 0u) == 0) &&
	    syscall(SYS_close_range, (unsigned)keep + 1u, ~0u, 0u) == 0)
		return;
#endif
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int dfd = d ? dirfd(d) : -1;

	while (d && (de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name);
		if (fd > 2 && fd != keep && fd != dfd)
			close(fd);
	}
	if (d)
		closedir(d);
}

static void __attribute__((noreturn))
child_run(struct kv_fsm *f, int wfd, pid_t parent)
{
	sigset_t none;

	/* Die with the parent; it may already be gone. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(1);
	/* The parent blocks SIGTERM and SIGINT for its signalfd. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	close_others(wfd);
	/* Yield the CPUs to the nodes: on a small machine the child competes
	 * with them, and their requests are what must not wait. */
	(void)setpriority(PRIO_PROCESS, 0, 10);
	if (f->snap_test_delay_ms) { /* --snapshot-test-delay-ms */
		struct timespec ts = {
			.tv_sec = f->snap_test_delay_ms / 1000,
			.tv_nsec = (long)(f->snap_test_delay_ms % 1000) *
				   1000000L,
		};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	_exit(kv_snap_save2(&f->map, &f->sessions, child_write, &wfd) ? 1 : 0);
}

/* ---- the parent --------------------------------------------------- */

static void stop_child(struct kv_fsm *f, int *status)
{
	sr_loop_unwatch(f->loop, f->snap_fd);
	close(f->snap_fd);
	f->snap_fd = -1;
	while (waitpid(f->snap_pid, status, 0) < 0 && errno == EINTR)
		;
	f->snap_pid = 0;
	free(f->snap_buf);
	f->snap_buf = NULL;
}

/* The snapshot in progress ended without being stored. */
static void snap_failed(struct kv_fsm *f)
{
	f->n_snap_failed++;
	f->snap_failed_seq = f->snap_seq;
	f->snap_done_seq = f->snap_seq;
}

/* The stream ended: complete the snapshot if the child says it is all. */
static void finish(struct kv_fsm *f)
{
	int status = 0, rc;

	stop_child(f, &status);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFSIGNALED(status))
			fsm_log(f, SR_LOG_WARN,
				"background snapshot: the child was killed "
				"by signal %d; the next snapshot is taken "
				"on the loop",
				WTERMSIG(status));
		else
			fsm_log(f, SR_LOG_WARN,
				"background snapshot: the child failed "
				"(status %d); the next snapshot is taken "
				"on the loop",
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		snap_failed(f);
		f->snap_inline_next = 1;
		(void)sr_node_snapshot_done(f->node, SR_EIO);
		return;
	}
	rc = sr_node_snapshot_done(f->node, 0);
	if (rc) {
		/* SR_ESTATE: the engine dropped it meanwhile; else the store
		 * failed and the engine stopped the node. */
		snap_failed(f);
		return;
	}
	f->snap_done_seq = f->snap_seq;
	f->n_snapshots++;
	f->last_snap_us = kv_snap_clock_us() - f->snap_start_us;
}

static void on_pipe(sr_loop *loop, int fd, int events, void *ctx)
{
	struct kv_fsm *f = ctx;
	size_t moved = 0;

	(void)loop;
	(void)events;
	while (moved < SNAPFORK_READ) {
		ssize_t n = read(fd, f->snap_buf, SNAPFORK_READ);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0) {
			finish(f);
			return;
		}
		if (n < 0) {
			fsm_log(f, SR_LOG_WARN,
				"background snapshot: reading its pipe "
				"failed: %s",
				strerror(errno));
			kv_snapfork_cancel(f);
			f->snap_inline_next = 1;
			(void)sr_node_snapshot_done(f->node, SR_EIO);
			return;
		}
		rc = sr_node_snapshot_write(f->node, f->snap_buf, (size_t)n);
		if (rc) {
			/* SR_ESTATE: superseded; otherwise the engine stopped
			 * the node (it logged why).  Nothing to complete. */
			kv_snapfork_cancel(f);
			return;
		}
		moved += (size_t)n;
	}
}

int kv_snapfork_start(struct kv_fsm *f)
{
	int p[2];
	pid_t pid, self = getpid();
	uint64_t t0 = kv_snap_clock_us();

	f->snap_buf = malloc(SNAPFORK_READ);
	if (!f->snap_buf)
		return SR_ENOMEM;
	if (pipe2(p, O_CLOEXEC) != 0) {
		free(f->snap_buf);
		f->snap_buf = NULL;
		return SR_EIO;
	}
	/* A bigger pipe: fewer wake-ups (the limit may refuse; harmless). */
	(void)fcntl(p[0], F_SETPIPE_SZ, (int)SNAPFORK_READ);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		child_run(f, p[1], self);
	}
	close(p[1]);
	if (pid < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) != 0 ||
	    sr_loop_watch(f->loop, p[0], SR_LOOP_READ, on_pipe, f) != 0) {
		int e = errno;
		close(p[0]);
		free(f->snap_buf);
		f->snap_buf = NULL;
		if (pid > 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		fsm_log(f, SR_LOG_WARN,
			"background snapshot: cannot start a child (%s); "
			"taking it on the loop",
			strerror(e));
		return SR_EIO;
	}
	f->snap_fd = p[0];
	f->snap_pid = pid;
	f->snap_start_us = t0;
	f->last_fork_us = kv_snap_clock_us() - t0;
	f->n_snap_forked++;
	return 0;
}

void kv_snapfork_cancel(struct kv_fsm *f)
{
	if (!f->snap_pid)
		return;
	kill(f->snap_pid, SIGKILL);
	stop_child(f, NULL);
	snap_failed(f);
}

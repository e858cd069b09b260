/*
 * server_testlib.h — what the test/server programs share: a monotonic
 * clock in milliseconds and a free loopback port for a server to listen
 * on (the servers' addresses must be known before any of them starts,
 * since each bootstraps with the others').
 */
#ifndef SR_SERVER_TESTLIB_H
#define SR_SERVER_TESTLIB_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether port can be bound on loopback now. */
static inline int port_bindable(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * A port nobody listens on now.  It is taken from 23000-26999, below the
 * kernel's ephemeral range (32768 and up by default): a port the kernel
 * chose for us would be free again once probed, and any connect() on the
 * machine may be handed it before the server binds it (seen as
 * sr_server_create() failing with SR_EIO while other suites ran).  The
 * kvnode tests use 27000-28999.  Successive calls in one process return
 * distinct ports, since the servers bind only after all are chosen.
 */
static inline int free_port(void)
{
	static unsigned seq;
	unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)now_ms();

	for (int tries = 0; tries < 4000; tries++) {
		int port = 23000 + (int)((seed + ++seq * 7919u) % 4000u);
		if (port_bindable(port))
			return port;
	}
	return -1;
}

#endif

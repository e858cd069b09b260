/*
 * tcp_addr.c — the transport's addresses: "host:port" and "[v6]:port"
 * strings as the configuration and the hello carry them, checked,
 * resolved for connect() and bind(), and printed for logs.
 *
 * The bottom of the transport: it knows nothing of peers or sockets in
 * use, only of address strings and socket addresses.  A name resolves
 * through getaddrinfo() and may block; numeric hosts (the usual case)
 * do not.
 */
#include "tcp_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Split "host:port" or "[v6]:port" into host and port strings. */
static int addr_split(const char *addr, char *host, size_t hcap, char *port,
		      size_t pcap)
{
	const char *colon, *h = addr;
	size_t hlen;

	if (!addr || !*addr)
		return SR_EINVAL;
	if (*addr == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':')
			return SR_EINVAL;
		h = addr + 1;
		hlen = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return SR_EINVAL;
		hlen = (size_t)(colon - addr);
	}
	size_t plen = strlen(colon + 1);
	if (hlen >= hcap || !plen || plen >= pcap)
		return SR_EINVAL;
	for (size_t i = 0; i < plen; i++)
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return SR_EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	memcpy(port, colon + 1, plen + 1);
	if (atoi(port) > 65535)
		return SR_EINVAL;
	return 0;
}

int tcp_addr_check(const char *addr)
{
	char host[SR_ADDR_MAX], port[8];
	return addr_split(addr, host, sizeof(host), port, sizeof(port));
}

/* Resolve addr (blocking for names; numeric hosts do not block). */
int tcp_addr_resolve(const char *addr, int passive, struct addrinfo **out)
{
	char host[SR_ADDR_MAX], port[8];
	struct addrinfo hints;

	if (addr_split(addr, host, sizeof(host), port, sizeof(port)))
		return SR_EINVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	const char *node = host;
	if (passive && (!*host || !strcmp(host, "*")))
		node = NULL;
	return getaddrinfo(node, port, &hints, out) ? SR_EINVAL : 0;
}

void tcp_addr_name(const struct sockaddr_storage *sa, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	if (sa->ss_family == AF_INET6)
		snprintf(buf, cap, "[%s]:%d", ip, port);
	else
		snprintf(buf, cap, "%s:%d", ip, port);
}

/*
 * membership.c — the configuration value and its encoding.
 *
 * A configuration entry's data is:
 *
 *   u8  version (1)
 *   u8  count   (<= SR_MAX_MEMBERS)
 *   count times:  u64 id (LE, != 0)  u8 role  u8 addr_len  addr bytes
 *
 * The role byte's high bit marks a learner to promote once caught up.
 *
 * Decoding is strict: a wrong version, a zero or duplicate id, an unknown
 * role, an address that is too long or a length that does not match the
 * buffer exactly all give SR_EPROTO.
 */
#include <string.h>

#include <seshat/raft.h>

#include "util.h"

#define CONF_VERSION 1

size_t sr_membership_encoded_size(const sr_membership *conf)
{
	size_t n = 2;
	for (uint32_t i = 0; i < conf->n && i < SR_MAX_MEMBERS; i++)
		n += 10 + strnlen(conf->members[i].addr, SR_ADDR_MAX - 1);
	return n;
}

int sr_membership_encode(const sr_membership *conf, void *buf, size_t cap)
{
	unsigned char *p = buf;
	size_t need;
	if (conf->n > SR_MAX_MEMBERS)
		return SR_EINVAL;
	need = sr_membership_encoded_size(conf);
	if (need > cap || need > INT32_MAX)
		return SR_ETOOBIG;
	*p++ = CONF_VERSION;
	*p++ = (unsigned char)conf->n;
	for (uint32_t i = 0; i < conf->n; i++) {
		const sr_member *m = &conf->members[i];
		size_t alen = strnlen(m->addr, SR_ADDR_MAX - 1);
		for (int b = 0; b < 8; b++)
			*p++ = (unsigned char)(m->id >> (8 * b));
		*p++ = (unsigned char)(m->role | (m->auto_promote ? 0x80 : 0));
		*p++ = (unsigned char)alen;
		memcpy(p, m->addr, alen);
		p += alen;
	}
	return (int)need;
}

int sr_membership_decode(sr_membership *conf, const void *buf, size_t len)
{
	const unsigned char *p = buf, *end = p + len;
	uint32_t count;

	memset(conf, 0, sizeof(*conf));
	if (len < 2 || p[0] != CONF_VERSION)
		return SR_EPROTO;
	count = p[1];
	p += 2;
	if (count > SR_MAX_MEMBERS)
		return SR_EPROTO;
	for (uint32_t i = 0; i < count; i++) {
		sr_member *m = &conf->members[i];
		size_t alen;
		if (end - p < 10)
			return SR_EPROTO;
		m->id = 0;
		for (int b = 0; b < 8; b++)
			m->id |= (uint64_t)p[b] << (8 * b);
		m->role = p[8] & 0x7f;
		m->auto_promote = (p[8] & 0x80) != 0;
		alen = p[9];
		p += 10;
		if (m->id == 0 || m->role < SR_ROLE_VOTER ||
		    m->role > SR_ROLE_REMOVED || alen >= SR_ADDR_MAX ||
		    (m->auto_promote && m->role != SR_ROLE_LEARNER) ||
		    (size_t)(end - p) < alen)
			return SR_EPROTO;
		memcpy(m->addr, p, alen);
		m->addr[alen] = '\0';
		if (memchr(m->addr, '\0', alen))
			return SR_EPROTO;
		p += alen;
		for (uint32_t j = 0; j < i; j++)
			if (conf->members[j].id == m->id)
				return SR_EPROTO;
	}
	if (p != end)
		return SR_EPROTO;
	conf->n = count;
	return 0;
}

const sr_member *sr_membership_find(const sr_membership *conf, sr_id id)
{
	for (uint32_t i = 0; i < conf->n && i < SR_MAX_MEMBERS; i++)
		if (conf->members[i].id == id)
			return &conf->members[i];
	return NULL;
}

int sr_membership_add(sr_membership *conf, sr_id id, uint32_t role,
		      const char *addr)
{
	sr_member *m;
	if (id == 0 || role < SR_ROLE_VOTER || role > SR_ROLE_REMOVED)
		return SR_EINVAL;
	if (addr && strlen(addr) >= SR_ADDR_MAX)
		return SR_EINVAL;
	if (sr_membership_find(conf, id))
		return SR_EEXIST;
	if (conf->n >= SR_MAX_MEMBERS)
		return SR_EINVAL;
	m = &conf->members[conf->n++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->role = role;
	if (addr)
		memcpy(m->addr, addr, strlen(addr) + 1);
	return 0;
}

/*
 * membership.c — the configuration value and its encoding.
 *
 * A configuration entry's data is:
 *
 *   u8  version (1: a simple configuration, 2: a joint one)
 *   u8  count   (<= SR_MAX_MEMBERS)
 *   count times:  u64 id (LE, != 0)  u8 role  [u8 new_role: version 2]
 *                 u8 addr_len  addr bytes
 *
 * The role byte's high bit marks a learner to promote once caught up.  A
 * joint configuration (thesis §4.3) gives every member its role in the
 * configuration being entered too (new_role, a role in 1..3); a simple
 * one is written as version 1, byte for byte as before joint consensus,
 * so entries and snapshots written earlier decode unchanged.
 *
 * Decoding is strict: a wrong version, a zero or duplicate id, an unknown
 * role, an address that is too long or a length that does not match the
 * buffer exactly all give SR_EPROTO.
 */
#include <string.h>

#include <seshat/raft.h>

#include "util.h"

#define CONF_VERSION	   1
#define CONF_VERSION_JOINT 2

static int valid_role(uint32_t role)
{
	return role >= SR_ROLE_VOTER && role <= SR_ROLE_REMOVED;
}

int sr_membership_is_joint(const sr_membership *conf)
{
	for (uint32_t i = 0; i < conf->n && i < SR_MAX_MEMBERS; i++)
		if (conf->members[i].new_role)
			return 1;
	return 0;
}

size_t sr_membership_encoded_size(const sr_membership *conf)
{
	size_t n = 2, per = sr_membership_is_joint(conf) ? 11 : 10;
	for (uint32_t i = 0; i < conf->n && i < SR_MAX_MEMBERS; i++)
		n += per + strnlen(conf->members[i].addr, SR_ADDR_MAX - 1);
	return n;
}

int sr_membership_encode(const sr_membership *conf, void *buf, size_t cap)
{
	unsigned char *p = buf;
	size_t need;
	int joint;
	if (conf->n > SR_MAX_MEMBERS)
		return SR_EINVAL;
	joint = sr_membership_is_joint(conf);
	for (uint32_t i = 0; i < conf->n; i++)
		if (!valid_role(conf->members[i].role) ||
		    (joint && !valid_role(conf->members[i].new_role)))
			return SR_EINVAL;
	need = sr_membership_encoded_size(conf);
	if (need > cap || need > INT32_MAX)
		return SR_ETOOBIG;
	*p++ = joint ? CONF_VERSION_JOINT : CONF_VERSION;
	*p++ = (unsigned char)conf->n;
	for (uint32_t i = 0; i < conf->n; i++) {
		const sr_member *m = &conf->members[i];
		size_t alen = strnlen(m->addr, SR_ADDR_MAX - 1);
		for (int b = 0; b < 8; b++)
			*p++ = (unsigned char)(m->id >> (8 * b));
		*p++ = (unsigned char)(m->role | (m->auto_promote ? 0x80 : 0));
		if (joint)
			*p++ = (unsigned char)m->new_role;
		*p++ = (unsigned char)alen;
		memcpy(p, m->addr, alen);
		p += alen;
	}
	return (int)need;
}

int sr_membership_decode(sr_membership *conf, const void *buf, size_t len)
{
	const unsigned char *p = buf, *end = p + len;
	uint32_t count, joint, per;

	memset(conf, 0, sizeof(*conf));
	if (len < 2 || (p[0] != CONF_VERSION && p[0] != CONF_VERSION_JOINT))
		return SR_EPROTO;
	joint = p[0] == CONF_VERSION_JOINT;
	per = joint ? 11 : 10;
	count = p[1];
	p += 2;
	if (count > SR_MAX_MEMBERS)
		return SR_EPROTO;
	for (uint32_t i = 0; i < count; i++) {
		sr_member *m = &conf->members[i];
		size_t alen;
		if ((size_t)(end - p) < per)
			return SR_EPROTO;
		m->id = 0;
		for (int b = 0; b < 8; b++)
			m->id |= (uint64_t)p[b] << (8 * b);
		m->role = p[8] & 0x7f;
		m->auto_promote = (p[8] & 0x80) != 0;
		m->new_role = joint ? p[9] : 0;
		alen = p[per - 1];
		p += per;
		if (m->id == 0 || !valid_role(m->role) ||
		    (joint && !valid_role(m->new_role)) ||
		    (m->role == SR_ROLE_REMOVED && joint &&
		     m->new_role != SR_ROLE_REMOVED) ||
		    alen >= SR_ADDR_MAX ||
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

/*
 * fuzz_codec.c — libFuzzer target for the wire decoder (`make fuzz`).
 *
 * The first input byte picks a mode:
 *   even: the rest is taken as raw bytes from the wire;
 *   odd:  the rest is a frame whose length field and CRC the harness
 *         fixes up first, so the fuzzer gets past the checksum and
 *         explores the structural checks of every message type.
 * Then the bytes are read as a stream of frames the way the transport
 * reads them (header, limit, whole frame, decode), with a growing decoder
 * and with a small fixed one.  Properties checked on every decoded frame:
 * nothing is read outside the input (ASan), decoded pointers lie inside
 * the input or the decoder's array, and encoding the decoded message
 * reproduces the frame byte for byte (the encoding is canonical).
 * Batch frames are opened and walked message by message with the same
 * checks, and the decoded messages rebuilt into a batch must give back
 * the frame's bytes; a batch that opens but holds a malformed message
 * stops the stream, as the transport closes the connection.  Coalesced
 * frames (heartbeats, append answers) are opened and read record by
 * record, and the messages rebuilt into a coalesced frame must give back
 * the frame's bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seshat/codec.h"

#define MAX_PAYLOAD (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		__builtin_trap(); /* a property failed: make libFuzzer stop */
}

static int inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	if (!n)
		return 1;
	const uint8_t *q = p;
	return q >= buf && q + n <= buf + len;
}

/* Decoded pointers lie inside the frame or the decoder's array. */
static int is_inside_decoded(const sr_msg *m, const uint8_t *f, size_t flen,
			     const sr_decoder *d)
{
	int ok = 1;
	if (m->type == SR_MSG_APPEND) {
		const sr_msg_append *a = &m->u.append;
		ok &= a->n_entries == 0 || a->entries == d->entries;
		ok &= a->n_entries <= d->cap;
		for (uint32_t i = 0; i < a->n_entries; i++)
			ok &= inside(a->entries[i].data, a->entries[i].len, f,
				     flen);
	} else if (m->type == SR_MSG_SNAPSHOT) {
		ok &= inside(m->u.snapshot.conf, m->u.snapshot.conf_len, f,
			     flen);
		ok &= inside(m->u.snapshot.data, m->u.snapshot.len, f, flen);
	}
	return ok;
}

static void check_decoded(const sr_msg *m, const uint8_t *f, size_t flen,
			  const sr_decoder *d)
{
	check(is_inside_decoded(m, f, flen, d));
	size_t size = sr_codec_size(m);
	check(size == flen);
	uint8_t *re = malloc(size);
	size_t got = 0;
	check(re && sr_codec_encode(m, re, size, &got) == 0 && got == size);
	check(memcmp(re, f, size) == 0);
	free(re);
}

/* Open a batch frame, decode every message in it and rebuild it. */
static int read_batch(sr_decoder *d, const uint8_t *f, size_t flen)
{
	sr_batch_iter it;
	uint32_t count = 0;
	size_t got = 0;
	if (sr_codec_batch_open(d, f, flen, &it, &count, &got))
		return -1;
	check(got == flen && count >= 1);
	uint8_t *re = malloc(flen);
	size_t rlen = SR_FRAME_HDR_SIZE;
	check(re && sr_codec_batch_begin(re, flen) == 0);
	sr_msg m;
	int rc;
	uint32_t n = 0;
	while ((rc = sr_codec_batch_next(d, &it, &m)) == 1) {
		check(is_inside_decoded(&m, f, flen, d));
		check(sr_codec_batch_add(&m, re, flen, &rlen) == 0);
		n++;
	}
	if (rc == 0) {
		check(n == count && rlen == flen);
		check(sr_codec_batch_seal(re, rlen) == 0);
		check(memcmp(re, f, flen) == 0);
	}
	free(re);
	return rc;
}

/* Open a coalesced frame, read every message and rebuild it. */
static int read_coalesced(sr_decoder *d, const uint8_t *f, size_t flen)
{
	sr_coalesced_iter it;
	uint32_t count = 0;
	size_t got = 0;
	if (sr_codec_coalesced_open(d, f, flen, &it, &count, &got))
		return -1;
	check(got == flen && count >= 1);
	uint8_t *re = malloc(flen);
	size_t rlen = 0;
	sr_msg m;
	uint32_t n = 0;
	check(re != NULL);
	while (sr_codec_coalesced_next(&it, &m) == 1) {
		check(m.type == SR_MSG_APPEND || m.type == SR_MSG_APPEND_RESP);
		check(m.type != SR_MSG_APPEND ||
		      (m.u.append.n_entries == 0 && !m.u.append.entries));
		if (n == 0)
			check(sr_codec_coalesced_begin(&m, re, flen, &rlen) ==
			      0);
		else
			check(sr_codec_coalesced_add(&m, re, flen, &rlen) == 0);
		n++;
	}
	check(n == count && rlen == flen);
	check(sr_codec_coalesced_seal(re, rlen) == 0);
	check(memcmp(re, f, flen) == 0);
	free(re);
	return 0;
}

/* Read frames one after another, as a connection would. */
static void read_stream(sr_decoder *d, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (len - off >= SR_FRAME_HDR_SIZE) {
		sr_frame_hdr h;
		if (sr_codec_header(buf + off, len - off, d->max_payload, &h))
			return;
		size_t flen = SR_FRAME_HDR_SIZE + (size_t)h.len;
		if (len - off < flen)
			return;
		if (h.type == SR_FRAME_BATCH) {
			if (read_batch(d, buf + off, flen))
				return;
		} else if (h.type == SR_FRAME_HEARTBEATS ||
			   h.type == SR_FRAME_APPEND_RESPS) {
			if (read_coalesced(d, buf + off, flen))
				return;
		} else if (h.type == SR_FRAME_HELLO) {
			sr_hello hello;
			if (sr_codec_decode_hello(buf + off, flen, &hello) ==
			    0) {
				uint8_t re[SR_HELLO_FRAME_SIZE];
				check(flen == SR_HELLO_FRAME_SIZE);
				check(sr_codec_encode_hello(&hello, re,
							    sizeof(re)) == 0);
				check(memcmp(re, buf + off, flen) == 0);
			}
		} else {
			sr_msg m;
			size_t got = 0;
			if (sr_codec_decode(d, buf + off, flen, &m, &got))
				return;
			check(got == flen);
			check_decoded(&m, buf + off, flen, d);
		}
		off += flen;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *buf = malloc(len ? len : 1);
	memcpy(buf, data + 1, len);
	if ((data[0] & 1) && len >= SR_FRAME_HDR_SIZE) {
		uint32_t plen = (uint32_t)(len - SR_FRAME_HDR_SIZE);
		for (int i = 0; i < 4; i++)
			buf[12 + i] = (uint8_t)(plen >> (8 * i));
		uint32_t crc = sr_crc32c(0, buf, 16);
		crc = sr_crc32c(crc, buf + SR_FRAME_HDR_SIZE, plen);
		for (int i = 0; i < 4; i++)
			buf[16 + i] = (uint8_t)(crc >> (8 * i));
	}

	sr_decoder grow;
	sr_decoder_init(&grow, MAX_PAYLOAD, 4096, NULL);
	read_stream(&grow, buf, len);
	sr_decoder_free(&grow);

	sr_entry scratch[8];
	sr_decoder fixed;
	sr_decoder_init_fixed(&fixed, MAX_PAYLOAD, scratch, 8);
	read_stream(&fixed, buf, len);

	free(buf);
	return 0;
}

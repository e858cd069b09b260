/*
 * crc32c.c — CRC32C with the SSE4.2 instruction where the CPU has it and a
 * slicing-by-8 table otherwise.
 *
 * The CPUID probe and the tables are computed on first use and cached.
 * That is the library's only process-wide state.  The first callers may
 * be on different threads (the WAL's writer and the host's), so the
 * tables are published with pthread_once(), which orders their writes
 * before every reader's use; the probe's result is one atomic int.  (A
 * plain or volatile flag was a data race under C11 even though every
 * writer stores the same values.)
 */
#include "crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define POLY 0x82f63b78u /* reflected Castagnoli polynomial */

/* Slicing-by-8 tables, generated at first use. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc32c_init_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = crc_table[0][i];
		for (int t = 1; t < 8; t++) {
			c = crc_table[0][c & 0xff] ^ (c >> 8);
			crc_table[t][i] = c;
		}
	}
}

static uint32_t crc32c_soft(uint32_t crc, const unsigned char *p, size_t len)
{
	(void)pthread_once(&crc_table_once, crc32c_init_table);
	while (len && ((uintptr_t)p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= crc;
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

/*
 * The instruction has a latency of three cycles but accepts one per cycle,
 * so large buffers are checksummed as three interleaved streams of
 * CRC_STREAM bytes, joined by shifting a stream's CRC past the bytes that
 * follow it: crc(s, A B) = shift(crc(s, A), |B|) ^ crc(0, B).  The shift by
 * CRC_STREAM zero bytes is linear, so a table per byte of the CRC does it.
 */
#define CRC_STREAM 512

static uint32_t crc_shift_table[4][256];
static pthread_once_t crc_shift_once = PTHREAD_ONCE_INIT;

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_zeros(uint32_t c)
{
	uint64_t v = c;
	for (int i = 0; i < CRC_STREAM / 8; i++)
		v = __builtin_ia32_crc32di(v, 0);
	return (uint32_t)v;
}

static void crc32c_init_shift(void)
{
	uint32_t bit[32];
	for (int k = 0; k < 32; k++)
		bit[k] = crc32c_hw_zeros(1u << k);
	for (int j = 0; j < 4; j++)
		for (uint32_t b = 0; b < 256; b++) {
			uint32_t v = 0;
			for (int k = 0; k < 8; k++)
				if (b & (1u << k))
					v ^= bit[8 * j + k];
			crc_shift_table[j][b] = v;
		}
}

static uint32_t crc32c_shift(uint32_t c)
{
	return crc_shift_table[0][c & 0xff] ^
	       crc_shift_table[1][(c >> 8) & 0xff] ^
	       crc_shift_table[2][(c >> 16) & 0xff] ^
	       crc_shift_table[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;
	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * CRC_STREAM)
		(void)pthread_once(&crc_shift_once, crc32c_init_shift);
	while (len >= 3 * CRC_STREAM) {
		uint64_t c1 = 0, c2 = 0;
		for (size_t i = 0; i < CRC_STREAM; i += 8) {
			uint64_t a, b, d;
			memcpy(&a, p + i, 8);
			memcpy(&b, p + CRC_STREAM + i, 8);
			memcpy(&d, p + 2 * CRC_STREAM + i, 8);
			c = __builtin_ia32_crc32di(c, a);
			c1 = __builtin_ia32_crc32di(c1, b);
			c2 = __builtin_ia32_crc32di(c2, d);
		}
		c = crc32c_shift(crc32c_shift((uint32_t)c) ^ (uint32_t)c1) ^
		    (uint32_t)c2;
		p += 3 * CRC_STREAM;
		len -= 3 * CRC_STREAM;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

static atomic_int crc_hw_state; /* 0 unknown, 1 yes, 2 no */

static int crc32c_have_hw(void)
{
	/* Relaxed is enough: the value is all that is shared, and racing
	 * first callers store the same one. */
	int st = atomic_load_explicit(&crc_hw_state, memory_order_relaxed);
	if (st == 0) {
		unsigned a, b, c, d;
		int ok = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
		st = ok ? 1 : 2;
		atomic_store_explicit(&crc_hw_state, st, memory_order_relaxed);
	}
	return st == 1;
}
#endif

uint32_t sr_crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	crc = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	if (crc32c_have_hw())
		return ~crc32c_hw(crc, p, len);
#endif
	return ~crc32c_soft(crc, p, len);
}

/* The portable path alone, so tests can compare both. */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len)
{
	return ~crc32c_soft(~crc, data, len);
}

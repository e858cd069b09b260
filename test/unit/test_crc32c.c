/*
 * test_crc32c.c — CRC32C: the check value, the hardware path (with its
 * three interleaved streams) against the table path for every length and
 * alignment that matters, and checksums computed in pieces.
 *
 * Built from lib/crc32c.c itself, so the table path is reachable.
 *
 * The first test must stay first: it makes the first use of the tables
 * from several threads at once (as the WAL's thread and the host's do),
 * which `make tsan` checks for data races.
 */
#include "../../lib/crc32c.c"

#include <pthread.h>

#include "testlib.h"

static unsigned char buf[20000];

static void fill(void)
{
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

struct crc_job {
	const unsigned char *p;
	size_t len;
	uint32_t fast, portable;
};

static void *crc_thread(void *arg)
{
	struct crc_job *j = arg;
	j->portable = crc32c_portable(0, j->p, j->len);
	j->fast = sr_crc32c(0, j->p, j->len);
	return NULL;
}

TEST(test_first_use_from_several_threads)
{
	enum { T = 4 };
	pthread_t th[T];
	struct crc_job jobs[T];
	fill();
	for (int i = 0; i < T; i++) {
		jobs[i].p = buf;
		jobs[i].len = sizeof(buf) - (size_t)i;
		CHECK_EQ(pthread_create(&th[i], NULL, crc_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < T; i++) {
		CHECK_EQ(jobs[i].fast, jobs[i].portable);
		CHECK_EQ(jobs[i].fast,
			 crc32c_portable(0, buf, sizeof(buf) - (size_t)i));
	}
}

TEST(test_check_value)
{
	CHECK_EQ(sr_crc32c(0, "123456789", 9), 0xe3069283);
	CHECK_EQ(crc32c_portable(0, "123456789", 9), 0xe3069283);
	CHECK_EQ(sr_crc32c(0, "", 0), 0);
}

TEST(test_fast_path_matches_the_table_for_every_length_and_alignment)
{
	fill();
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len < 3 * 512 * 3 + 20;
		     len += len < 64 ? 1 : 37)
			CHECK_EQ(sr_crc32c(0, buf + off, len),
				 crc32c_portable(0, buf + off, len));
	CHECK_EQ(sr_crc32c(7, buf, sizeof(buf)),
		 crc32c_portable(7, buf, sizeof(buf)));
}

TEST(test_crc_in_pieces_equals_crc_of_the_whole)
{
	fill();
	uint32_t whole = sr_crc32c(0, buf, sizeof(buf));
	for (size_t cut = 0; cut < sizeof(buf); cut += 1531) {
		uint32_t c = sr_crc32c(0, buf, cut);
		CHECK_EQ(sr_crc32c(c, buf + cut, sizeof(buf) - cut), whole);
	}
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

/*
 * testlib.h — the tiny test harness every test program uses.
 *
 *   TEST(name) { ... CHECK(cond); CHECK_EQ(a, b); ... }
 *   int main(int argc, char **argv) { return test_main(argc, argv); }
 *
 * Tests register themselves through a constructor, run in the order they
 * appear, and the program's last line is "N passed, N failed".  A failing
 * CHECK prints file, line and the expression, then ends that test.
 * `prog NAME` runs only the tests whose names contain NAME.
 */
#ifndef SR_TESTLIB_H
#define SR_TESTLIB_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
struct test_case {
	const char *name;
	test_fn fn;
};

#define TEST_MAX 1024
static struct test_case test_cases[TEST_MAX];
static int test_count;
static jmp_buf test_jmp;
static int test_failed_flag;

static inline void test_register(const char *name, test_fn fn)
{
	if (test_count < TEST_MAX) {
		test_cases[test_count].name = name;
		test_cases[test_count].fn = fn;
		test_count++;
	}
}

#define TEST(name)                                                             \
	static void name(void);                                                \
	__attribute__((constructor)) static void name##_register(void)         \
	{                                                                      \
		test_register(#name, name);                                    \
	}                                                                      \
	static void name(void)

#define TEST_FAIL(...)                                                         \
	do {                                                                   \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);              \
		fprintf(stderr, __VA_ARGS__);                                  \
		fprintf(stderr, "\n");                                         \
		test_failed_flag = 1;                                          \
		longjmp(test_jmp, 1);                                          \
	} while (0)

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			TEST_FAIL("CHECK(%s) failed", #cond);                  \
	} while (0)

#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long check_a_ = (long long)(a);                           \
		long long check_b_ = (long long)(b);                           \
		if (check_a_ != check_b_)                                      \
			TEST_FAIL("CHECK_EQ(%s, %s): %lld != %lld", #a, #b,    \
				  check_a_, check_b_);                         \
	} while (0)

static inline int test_main(int argc, char **argv)
{
	volatile int passed = 0, failed = 0;
	for (volatile int i = 0; i < test_count; i++) {
		if (argc > 1 && !strstr(test_cases[i].name, argv[1]))
			continue;
		test_failed_flag = 0;
		if (setjmp(test_jmp) == 0)
			test_cases[i].fn();
		if (test_failed_flag) {
			failed++;
			printf("FAIL %s\n", test_cases[i].name);
		} else {
			passed++;
			printf("ok   %s\n", test_cases[i].name);
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif

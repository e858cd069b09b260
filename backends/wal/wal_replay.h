/*
 * wal_replay.h — the replay state that wal_recover.c (the directory, the
 * groups, repair) and wal_replay.c (one segment) share while a WAL opens.
 * Private to backends/wal.
 */
#ifndef WAL_REPLAY_H
#define WAL_REPLAY_H

#include "wal_int.h"

/* A read window over one file. */
struct seg_window {
	sr_wal *w;
	uint32_t version; /* the segment's format version */
	int fd;
	uint64_t size, base;
	unsigned char *buf;
	size_t cap, len;
	const char *name;
};

/* The replay so far, across the segments in sequence order. */
struct replay {
	sr_wal *w;
	struct seg_window rd;
	int started; /* group 0's state was set from a segment header */
	uint64_t last_batch, batch_off, seg_first_batch, max_batch;
	int have_rec;	   /* a good record in the current segment */
	uint64_t end;	   /* valid end of the last scanned segment */
	uint64_t zero_to;  /* torn bytes in the last segment: end..zero_to */
	uint64_t max_seq;  /* highest segment number in the directory */
	uint64_t stop_seq; /* repair: drop from here on */
	uint64_t stop_off; /* 0: the whole segment */
	char name[32];
};

/* What a replay function returns besides 0 and SR_E*: corruption was
 * found and, repair being on, stop_seq/stop_off say where to cut. */
enum { SCAN_REPAIR = 1 };

/* Open segment seq, check its header, add it to the segment table and
 * replay its records (is_last: the newest segment, where a torn tail may
 * be).  0, SCAN_REPAIR or an error. */
int wal_replay_segment(struct replay *s, uint64_t seq, int is_last);
/* Report corruption at (seq, off) (whole: the segment from its start);
 * SR_ECORRUPT under SR_WAL_REPAIR_NONE, else SCAN_REPAIR with the cut
 * remembered. */
int wal_replay_corrupt(struct replay *s, uint64_t seq, uint64_t off, int whole,
		       const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Forget every record of g replayed so far: its log restarts after its
 * snapshot. */
void wal_replay_reset(struct sr_wal_group *g);
/* Raise each group's survey_max to the highest entry index in valid
 * records of segment seq from off on (repair, before the cut). */
int wal_replay_survey_segment(struct replay *s, uint64_t seq, uint64_t off);

#endif

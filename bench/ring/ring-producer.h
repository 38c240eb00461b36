/* ring-producer: the event and the run arguments. The ONLY definition of these layouts; the
 * TypeScript side (bench and ring-buffer tests) reads them from BTF. */
#ifndef TCPLENS_RING_PRODUCER_H
#define TCPLENS_RING_PRODUCER_H

#include "tcplens.h"

/* Shaped like accept_event (120 bytes) so the reader is measured on a realistic record. Every
 * field is derived from seq, so a test can check each byte it receives. */
struct ring_event {
	__u64 seq;
	__u64 ts_ns;     /* bpf_ktime_get_ns() at emit */
	__u64 cookie;    /* seq * RING_COOKIE_MUL */
	__u64 netns;     /* ~seq */
	__u32 count;     /* record length in bytes (>= sizeof(struct ring_event)) */
	__u32 pid;       /* (__u32)seq ^ RING_PID_XOR */
	struct tcplens_endpoint local;  /* addr[i] = seq + i, port = seq & 0xffff, family 4 */
	struct tcplens_endpoint peer;   /* addr[i] = seq + 16 + i, port = ~seq & 0xffff, family 6 */
	struct tcplens_endpoint client; /* zero */
	__u8 toa_kind;   /* seq & 0xff */
	__u8 toa_len;    /* 8 */
	__u8 toa_source; /* 1 */
	__u8 flags;      /* 0 */
	char comm[16];   /* "ring-producer" */
	/* A record longer than the event carries tail byte k (from the record start) = (seq + k) & 0xff. */
};

#define RING_COOKIE_MUL 0x9e3779b97f4a7c15ULL
#define RING_PID_XOR    0x5a5a5a5aU
#define RING_MAX_RECORD 256

/* Run modes */
#define RING_MODE_EMIT 0 /* count records of `size` bytes through tcplens_emit (copy into the ring) */
#define RING_MODE_HOLD 1 /* A, then B reserved and left BUSY while C is committed, spin hold_ns, commit B */

/* BPF_PROG_TEST_RUN context (in and out): one run emits `count` events numbered from seq_base. */
struct ring_produce_args {
	__u64 seq_base;
	__u64 hold_ns;      /* RING_MODE_HOLD: how long B stays busy */
	__u32 count;
	__u32 size;         /* record length, sizeof(struct ring_event)..RING_MAX_RECORD */
	__u32 discard_every; /* 0 = never; else record i with i % discard_every == discard_every - 1 is discarded */
	__u32 mode;
	/* out */
	__u32 emitted;      /* records committed */
	__u32 discarded;    /* records reserved then discarded */
	__u32 failed;       /* records the ring had no room for (also counted in counters.lost) */
	__u32 _pad;
};

struct ring_counters {
	__u64 lost;      /* ring buffer full (first field, as TCPLENS_COUNTERS requires) */
	__u64 emitted;
	__u64 discarded;
};

#endif

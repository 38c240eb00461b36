// SPDX-License-Identifier: GPL-2.0
/*
 * ring-producer: emits numbered events into a ring buffer when run with BPF_PROG_TEST_RUN, so the
 * ring reader can be tested and measured without traffic. A syscall program: its context is the
 * caller's struct ring_produce_args (results are copied back), and bpf_loop emits many events per run.
 */
#include "tcplens.h"
#include "ring-producer.h"

char LICENSE[] SEC("license") = "GPL";

TCPLENS_RINGBUF(4 << 20);
TCPLENS_COUNTERS(struct ring_counters);

/* Where a record is built before it is copied into the ring (too big for the loop callback's
 * stack). As a map value it also puts struct ring_event into the object's BTF. */
struct ring_record {
	struct ring_event ev;
	__u8 tail[RING_MAX_RECORD + 8 - sizeof(struct ring_event)];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ring_record);
} scratch SEC(".maps");

struct loop_ctx {
	__u64 seq_base;
	__u32 size;
	__u32 discard_every;
	__u32 emitted;
	__u32 discarded;
	__u32 failed;
	__u8 *buf;
};

static __always_inline void fill_event(struct ring_event *ev, __u64 seq, __u32 size)
{
	int i;

	ev->seq = seq;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cookie = seq * RING_COOKIE_MUL;
	ev->netns = ~seq;
	ev->count = size;
	ev->pid = (__u32)seq ^ RING_PID_XOR;
	for (i = 0; i < 16; i++) {
		ev->local.addr[i] = seq + i;
		ev->peer.addr[i] = seq + 16 + i;
		ev->client.addr[i] = 0;
	}
	ev->local.port = seq & 0xffff;
	ev->local.family = 4;
	ev->local._pad = 0;
	ev->peer.port = ~seq & 0xffff;
	ev->peer.family = 6;
	ev->peer._pad = 0;
	ev->client.port = 0;
	ev->client.family = 0;
	ev->client._pad = 0;
	ev->toa_kind = seq & 0xff;
	ev->toa_len = 8;
	ev->toa_source = 1;
	ev->flags = 0;
	__builtin_memcpy(ev->comm, "ring-producer\0\0", 16);
}

/* Tail byte k = (seq + k) & 0xff, written 8 bytes at a time (the buffer has 8 spare bytes). */
static __always_inline void fill_tail(__u8 *buf, __u64 seq, __u32 size)
{
	__u32 k;

	for (k = sizeof(struct ring_event); k < RING_MAX_RECORD; k += 8) {
		__u64 b = seq + k, w = 0;
		int j;

		if (k >= size)
			break;
		for (j = 7; j >= 0; j--)
			w = (w << 8) | ((b + j) & 0xff);
		*(__u64 *)(buf + k) = w;
	}
}

static long emit_one(__u32 i, void *data)
{
	struct loop_ctx *lc = data;
	__u64 seq = lc->seq_base + i;
	__u32 size = lc->size;
	__u8 *buf = lc->buf;

	if (lc->discard_every && i % lc->discard_every == lc->discard_every - 1) {
		struct ring_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

		if (!ev) {
			lc->failed++;
			TCPLENS_COUNT(struct ring_counters, lost);
			return 0;
		}
		fill_event(ev, seq, sizeof(*ev));
		bpf_ringbuf_discard(ev, 0);
		lc->discarded++;
		TCPLENS_COUNT(struct ring_counters, discarded);
		return 0;
	}
	if (!buf)
		return 1;
	fill_event((struct ring_event *)buf, seq, size);
	if (size > sizeof(struct ring_event))
		fill_tail(buf, seq, size);
	if (size > RING_MAX_RECORD)
		return 1;
	if (tcplens_emit(&events, &counters, buf, size)) {
		lc->failed++;
		return 0;
	}
	lc->emitted++;
	TCPLENS_COUNT(struct ring_counters, emitted);
	return 0;
}

struct hold_ctx {
	__u64 until;
};

static long spin(__u32 i, void *data)
{
	struct hold_ctx *h = data;

	return bpf_ktime_get_ns() >= h->until;
}

/* A (committed), B (reserved, busy), C (committed after B), spin, then commit B. */
static __always_inline int produce_hold(struct ring_produce_args *args)
{
	struct ring_event *a, *b, *cc;
	struct hold_ctx h;
	__u64 seq = args->seq_base;

	a = bpf_ringbuf_reserve(&events, sizeof(*a), 0);
	if (!a)
		return 1;
	fill_event(a, seq, sizeof(*a));
	bpf_ringbuf_submit(a, 0);
	b = bpf_ringbuf_reserve(&events, sizeof(*b), 0);
	if (!b)
		return 1;
	fill_event(b, seq + 1, sizeof(*b));
	cc = bpf_ringbuf_reserve(&events, sizeof(*cc), 0);
	if (!cc) {
		bpf_ringbuf_discard(b, 0);
		return 1;
	}
	fill_event(cc, seq + 2, sizeof(*cc));
	bpf_ringbuf_submit(cc, 0);
	h.until = bpf_ktime_get_ns() + args->hold_ns;
	bpf_loop(1 << 23, spin, &h, 0);
	bpf_ringbuf_submit(b, 0);
	args->emitted = 3;
	return 0;
}

SEC("syscall")
int produce(struct ring_produce_args *args)
{
	struct loop_ctx lc = {};
	__u32 zero = 0;
	__u32 size = args->size;

	if (args->mode == RING_MODE_HOLD)
		return produce_hold(args);
	if (size < sizeof(struct ring_event) || size > RING_MAX_RECORD)
		return 1;
	lc.seq_base = args->seq_base;
	lc.size = size;
	lc.discard_every = args->discard_every;
	lc.buf = bpf_map_lookup_elem(&scratch, &zero);
	bpf_loop(args->count, emit_one, &lc, 0);
	args->emitted = lc.emitted;
	args->discarded = lc.discarded;
	args->failed = lc.failed;
	return 0;
}

/* Shared kernel-side basics for every tcplens program. */
#ifndef TCPLENS_H
#define TCPLENS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* An endpoint as events carry it: IPv4 in the first 4 bytes of addr, port in host order. */
struct tcplens_endpoint {
	__u8 addr[16];
	__u16 port;
	__u8 family; /* 4 or 6; 0 = none */
	__u8 _pad;
};

/*
 * Each capability declares its ring buffer with TCPLENS_RINGBUF(bytes) and its counters with
 * TCPLENS_COUNTERS(struct <cap>_counters): a per-CPU array of one struct of __u64 fields whose
 * FIRST field is `lost` (events the kernel could not reserve room for). User space reads the
 * fields by name through BTF and sums them over CPUs.
 */
#define TCPLENS_RINGBUF(bytes)                                   \
	struct {                                                 \
		__uint(type, BPF_MAP_TYPE_RINGBUF);              \
		__uint(max_entries, bytes);                      \
	} events SEC(".maps")

#define TCPLENS_COUNTERS(ctype)                                  \
	struct {                                                 \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);         \
		__uint(max_entries, 1);                          \
		__type(key, __u32);                              \
		__type(value, ctype);                            \
	} counters SEC(".maps")

/* This CPU's counters struct (NULL never happens for a 1-entry array, but the verifier asks). */
static __always_inline void *tcplens_counters(void *map)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(map, &zero);
}

#define TCPLENS_COUNT(ctype, field)                              \
	do {                                                     \
		ctype *__c = tcplens_counters(&counters);         \
		if (__c)                                         \
			__c->field++;                            \
	} while (0)

/* Copy an event into the ring; a full ring is counted in `lost`, never silent. */
static __always_inline int tcplens_emit(void *ringbuf, void *counters_map, const void *ev, __u64 size)
{
	if (bpf_ringbuf_output(ringbuf, (void *)ev, size, 0)) {
		__u64 *lost = tcplens_counters(counters_map);
		if (lost)
			*lost += 1;
		return -1;
	}
	return 0;
}

#endif

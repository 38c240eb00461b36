/* hops: what the socket filter remembers of a probe socket's first reply, and its counters.
 * The ONLY definition of these layouts; TypeScript reads them from BTF. */
#ifndef TCPLENS_HOPS_H
#define TCPLENS_HOPS_H

#include "tcplens.h"

/* TCP flags as in the header's 14th byte */
#define HOPS_TCP_RST 0x04
#define HOPS_TCP_SYN 0x02
#define HOPS_TCP_ACK 0x10

/* One per probe socket, keyed by its socket cookie (getsockopt SO_COOKIE in user space). */
struct hops_reply {
	__u64 reply_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the first reply reached the socket */
	__u32 later;    /* packets the socket got after the first reply: seen, never used */
	__u8 ttl;       /* IPv4 TTL or IPv6 hop limit of the first reply */
	__u8 family;    /* 4 or 6, from the IP header's version */
	__u8 tcp_flags; /* of the first reply: SYN|ACK, or RST */
	__u8 _pad;
};

struct hops_counters {
	__u64 lost;    /* first replies not recorded: the replies map was full */
	__u64 packets; /* every packet the filter ran on */
	__u64 replies; /* first replies recorded */
	__u64 later;   /* packets after a socket's first reply */
	__u64 other;   /* packets before any SYN-ACK/RST (not a reply: ignored) */
	__u64 not_ip;  /* packets whose IP or TCP header could not be read */
};

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * tcplens hops: a socket filter attached (SO_ATTACH_BPF) to each probe's TCP socket before
 * connect(). It keeps the TTL / hop limit of the socket's FIRST reply (the SYN-ACK, or the RST of
 * a closed port) and only counts what comes after, so a peer that changes its TTL later, or a
 * middlebox that rewrites data segments, cannot change the answer.
 *
 * Offsets are relative to the network header (BPF_HDR_START_NET), not to skb->data: on a TCP
 * socket the data starts at the TCP header and the IP header lies before it, while under
 * BPF_PROG_TEST_RUN the data starts at the IP header. Network-relative loads read the same bytes
 * in both, so the test run checks exactly the loads the live filter makes.
 *
 * A socket filter's return value is the number of bytes to keep: it returns skb->len on every
 * path (0 would drop the packet, less would truncate it).
 */
#include "tcplens.h"
#include "hops.h"

char LICENSE[] SEC("license") = "GPL";

TCPLENS_COUNTERS(struct hops_counters);

/* Sized by user space (bpf_map__set_max_entries) to cover its in-flight probes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct hops_reply);
} replies SEC(".maps");

#define IPPROTO_TCP_ 6

/* TTL offset, TCP header offset and family of the packet's IP header; -1 if it is not IP/TCP. */
static __always_inline int ip_layout(struct __sk_buff *skb, __u32 *ttl_off, __u32 *tcp_off, __u8 *family)
{
	__u8 vihl, next;

	if (bpf_skb_load_bytes_relative(skb, 0, &vihl, 1, BPF_HDR_START_NET))
		return -1;
	if ((vihl >> 4) == 4) {
		if ((vihl & 0xf) < 5)
			return -1;
		*ttl_off = 8;
		*tcp_off = (vihl & 0xf) * 4;
		*family = 4;
		return 0;
	}
	if ((vihl >> 4) == 6) {
		/* A SYN-ACK or RST with IPv6 extension headers is not worth a header walk: ignored. */
		if (bpf_skb_load_bytes_relative(skb, 6, &next, 1, BPF_HDR_START_NET) || next != IPPROTO_TCP_)
			return -1;
		*ttl_off = 7;
		*tcp_off = 40;
		*family = 6;
		return 0;
	}
	return -1;
}

static __always_inline void record_first_reply(struct __sk_buff *skb)
{
	struct hops_reply rec = {}, *seen;
	__u32 ttl_off, tcp_off;
	__u8 family, ttl, flags;
	__u64 cookie;

	TCPLENS_COUNT(struct hops_counters, packets);
	cookie = bpf_get_socket_cookie(skb);
	seen = bpf_map_lookup_elem(&replies, &cookie);
	if (seen) {
		__sync_fetch_and_add(&seen->later, 1);
		TCPLENS_COUNT(struct hops_counters, later);
		return;
	}
	if (ip_layout(skb, &ttl_off, &tcp_off, &family) ||
	    bpf_skb_load_bytes_relative(skb, ttl_off, &ttl, 1, BPF_HDR_START_NET) ||
	    bpf_skb_load_bytes_relative(skb, tcp_off + 13, &flags, 1, BPF_HDR_START_NET)) {
		TCPLENS_COUNT(struct hops_counters, not_ip);
		return;
	}
	/* Only an answer to our SYN is a reply; anything else before it says nothing about the path. */
	if (!(flags & HOPS_TCP_RST) && (flags & (HOPS_TCP_SYN | HOPS_TCP_ACK)) != (HOPS_TCP_SYN | HOPS_TCP_ACK)) {
		TCPLENS_COUNT(struct hops_counters, other);
		return;
	}
	rec.reply_ns = bpf_ktime_get_ns();
	rec.ttl = ttl;
	rec.family = family;
	rec.tcp_flags = flags;
	/* NOEXIST: if another CPU recorded this socket's reply first, that one stays the first. */
	if (bpf_map_update_elem(&replies, &cookie, &rec, BPF_NOEXIST) == 0)
		TCPLENS_COUNT(struct hops_counters, replies);
	else if (bpf_map_lookup_elem(&replies, &cookie))
		TCPLENS_COUNT(struct hops_counters, later);
	else
		TCPLENS_COUNT(struct hops_counters, lost);
}

SEC("socket")
int first_reply(struct __sk_buff *skb)
{
	record_first_reply(skb);
	return skb->len;
}

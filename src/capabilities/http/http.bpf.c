// SPDX-License-Identifier: GPL-2.0
/*
 * tcplens http: the socket filter of an AF_PACKET capture. It keeps a frame only when it holds a
 * TCP segment to or from one of the --port ports (and, with --host, to or from one of the ranges),
 * and drops everything else before it is copied to the ring. The rules are exactly those written
 * out in src/net/packet-filter.ts (steps 1-7); test/cases/http-filter-cases.ts holds both sides to
 * them through BPF_PROG_TEST_RUN.
 *
 * A socket filter may not read packet memory directly: every header is copied to the stack with
 * bpf_skb_load_bytes, which also checks each read against the packet's end.
 */
#include "tcplens.h"
#include "http.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_HLEN_ 14
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86dd
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88a8
#define PROTO_IPIP 4
#define PROTO_TCP 6
#define PROTO_IPV6 41
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 8

/* --port as a bitmap of 65536 bits; port_count 0 keeps every port. */
const volatile __u8 port_bits[8192];
const volatile __u32 port_count = 0;
const volatile struct http_host_range hosts[HTTP_MAX_HOSTS];
const volatile __u32 host_count = 0;
/* bytes kept of each frame (0 = all of it) */
const volatile __u32 snaplen = 0;

TCPLENS_COUNTERS(struct http_counters);

#define COUNT(field) TCPLENS_COUNT(struct http_counters, field)

/* Where the innermost IP header's addresses are, for the --host test. */
struct inner_ip {
	__u32 src_off;
	__u32 dst_off;
	__u8 family;
};

enum verdict { KEEP = 0, NOT_IP, NOT_TCP, FRAGMENT, MALFORMED, PORT, HOST };

static __always_inline __u16 be16_at(const __u8 *b)
{
	return ((__u16)b[0] << 8) | b[1];
}

static __always_inline int port_wanted(__u16 port)
{
	return port_bits[port >> 3] & (1 << (port & 7));
}

/* Step 5 and 6: a TCP header within [off, ip_end), then the port set. */
static __always_inline enum verdict tcp_segment(struct __sk_buff *skb, __u32 off, __u32 ip_end)
{
	__u8 th[20];

	if (off + 20 > ip_end || bpf_skb_load_bytes(skb, off, th, sizeof(th)))
		return MALFORMED;
	__u32 doff = (th[12] >> 4) * 4;
	if (doff < 20 || off + doff > ip_end)
		return MALFORMED;
	if (port_count == 0)
		return KEEP;
	if (port_wanted(be16_at(&th[0])) || port_wanted(be16_at(&th[2])))
		return KEEP;
	return PORT;
}

/* Step 4. IPv6 never carries a tunnel we follow: 4 or 41 after it drops, inner or outer. */
static __always_inline enum verdict ipv6_packet(struct __sk_buff *skb, __u32 off, __u32 end, struct inner_ip *ip)
{
	__u8 h[8];
	int i;

	if (off + 40 > end || bpf_skb_load_bytes(skb, off, h, sizeof(h)))
		return MALFORMED;
	if ((h[0] >> 4) != 6)
		return NOT_IP;
	__u32 payload = be16_at(&h[4]);
	__u32 ip_end = off + 40 + payload;
	if (payload == 0 || ip_end > end)
		return MALFORMED;
	ip->family = 6;
	ip->src_off = off + 8;
	ip->dst_off = off + 24;
	__u8 next = h[6];
	__u32 at = off + 40;
	for (i = 0; i <= MAX_IPV6_EXT; i++) {
		if (next == PROTO_TCP)
			return tcp_segment(skb, at, ip_end);
		if (next == PROTO_IPIP || next == PROTO_IPV6)
			return NOT_TCP;
		if (next != 0 && next != 43 && next != 60 && next != 44 && next != 51)
			return NOT_TCP;
		if (i == MAX_IPV6_EXT)
			return MALFORMED; /* a 9th extension header */
		if (at + 8 > ip_end || bpf_skb_load_bytes(skb, at, h, sizeof(h)))
			return MALFORMED;
		__u32 len;
		if (next == 44) {
			/* offset 0 and no M flag: an atomic fragment, a whole packet */
			if (be16_at(&h[2]) & 0xfff9)
				return FRAGMENT;
			len = 8;
		} else if (next == 51) {
			len = ((__u32)h[1] + 2) * 4;
		} else {
			len = ((__u32)h[1] + 1) * 8;
		}
		if (at + len > ip_end)
			return MALFORMED;
		next = h[0];
		at += len;
	}
	return MALFORMED;
}

/* Step 3 for one IPv4 header; returns the protocol's start in *payload and its end in *ip_end. */
static __always_inline enum verdict ipv4_header(struct __sk_buff *skb, __u32 off, __u32 end, struct inner_ip *ip,
						__u8 *proto, __u32 *payload, __u32 *ip_end)
{
	__u8 h[20];

	if (off + 20 > end || bpf_skb_load_bytes(skb, off, h, sizeof(h)))
		return MALFORMED;
	if ((h[0] >> 4) != 4)
		return NOT_IP;
	__u32 ihl = (h[0] & 0x0f) * 4;
	__u32 total = be16_at(&h[2]);
	if (ihl < 20 || total < ihl || off + ihl > end || off + total > end)
		return MALFORMED;
	if (be16_at(&h[6]) & 0x3fff)
		return FRAGMENT;
	ip->family = 4;
	ip->src_off = off + 12;
	ip->dst_off = off + 16;
	*proto = h[9];
	*payload = off + ihl;
	*ip_end = off + total;
	return KEEP;
}

static __always_inline enum verdict ipv4_packet(struct __sk_buff *skb, __u32 off, __u32 end, struct inner_ip *ip)
{
	__u32 payload, ip_end;
	__u8 proto;
	enum verdict v = ipv4_header(skb, off, end, ip, &proto, &payload, &ip_end);

	if (v != KEEP)
		return v;
	if (proto == PROTO_IPIP || proto == PROTO_IPV6) {
		/* The inner packet is bounded by the outer one; a tunnel inside it drops. */
		if (proto == PROTO_IPV6)
			return ipv6_packet(skb, payload, ip_end, ip);
		__u32 inner_payload, inner_end;
		v = ipv4_header(skb, payload, ip_end, ip, &proto, &inner_payload, &inner_end);
		if (v != KEEP)
			return v;
		if (proto != PROTO_TCP)
			return NOT_TCP;
		return tcp_segment(skb, inner_payload, inner_end);
	}
	if (proto != PROTO_TCP)
		return NOT_TCP;
	return tcp_segment(skb, payload, ip_end);
}

/* Step 7: the innermost source or destination in one of the --host ranges. */
static __always_inline int host_wanted(struct __sk_buff *skb, const struct inner_ip *ip)
{
	__u32 a[2][4] = {};
	int i, j;

	if (ip->family == 4) {
		if (bpf_skb_load_bytes(skb, ip->src_off, a[0], 4) || bpf_skb_load_bytes(skb, ip->dst_off, a[1], 4))
			return 0;
	} else {
		if (bpf_skb_load_bytes(skb, ip->src_off, a[0], 16) || bpf_skb_load_bytes(skb, ip->dst_off, a[1], 16))
			return 0;
	}
	for (i = 0; i < HTTP_MAX_HOSTS; i++) {
		if (i >= host_count)
			break;
		if (hosts[i].family != ip->family)
			continue;
		for (j = 0; j < 2; j++) {
			if ((a[j][0] & hosts[i].mask[0]) == hosts[i].net[0] &&
			    (a[j][1] & hosts[i].mask[1]) == hosts[i].net[1] &&
			    (a[j][2] & hosts[i].mask[2]) == hosts[i].net[2] &&
			    (a[j][3] & hosts[i].mask[3]) == hosts[i].net[3])
				return 1;
		}
	}
	return 0;
}

/* Steps 1 and 2. A tag the driver stripped into metadata (VLAN offload) is the outermost one. */
static __always_inline enum verdict judge(struct __sk_buff *skb)
{
	struct inner_ip ip = {};
	__u32 end = skb->len;
	__u32 tags = skb->vlan_present ? 1 : 0;
	__u32 off = ETH_HLEN_;
	__u8 tag[4];
	__u16 ethertype;
	enum verdict v;
	int i;

	if (bpf_skb_load_bytes(skb, 12, tag, 2))
		return MALFORMED;
	ethertype = be16_at(tag);
	for (i = 0; i <= MAX_VLAN_TAGS; i++) {
		if (ethertype != ETH_P_8021Q_ && ethertype != ETH_P_8021AD_)
			break;
		if (++tags > MAX_VLAN_TAGS)
			return NOT_IP;
		if (bpf_skb_load_bytes(skb, off, tag, 4))
			return MALFORMED;
		ethertype = be16_at(&tag[2]);
		off += 4;
	}
	if (ethertype == ETH_P_IP_)
		v = ipv4_packet(skb, off, end, &ip);
	else if (ethertype == ETH_P_IPV6_)
		v = ipv6_packet(skb, off, end, &ip);
	else
		return NOT_IP;
	if (v == KEEP && host_count && !host_wanted(skb, &ip))
		return HOST;
	return v;
}

SEC("socket")
int http_filter(struct __sk_buff *skb)
{
	enum verdict v = judge(skb);

	COUNT(frames);
	switch (v) {
	case KEEP:
		COUNT(kept);
		return snaplen ? snaplen : skb->len;
	case NOT_IP: COUNT(drop_not_ip); break;
	case NOT_TCP: COUNT(drop_not_tcp); break;
	case FRAGMENT: COUNT(drop_fragment); break;
	case PORT: COUNT(drop_port); break;
	case HOST: COUNT(drop_host); break;
	default: COUNT(drop_malformed); break;
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * tcplens lab: the balancer's TOA inserter, as LVS FULLNAT does it.
 *
 * Attached at TC ingress of the balancer's client-facing interfaces, so it sees each client's
 * packet before nftables rewrites it: the address and port it writes into the option are the
 * packet's own source. NAT then rewrites the addresses and adjusts the checksum incrementally,
 * which stays right because we leave a correct checksum behind.
 *
 * Only the SYN and the ACK that completes the handshake get the option (LVS semantics). The SYN
 * is recognised by its flags; the handshake ACK by its sequence number (client ISN + 1), which
 * the SYN leaves in an LRU map. The packet grows at the tail (bpf_skb_change_tail); a pure
 * handshake packet has no payload, so the options region can be rewritten in place, one option
 * longer, with the TOA first (see options_region).
 */
#include "tcplens.h"
#include "toa-insert.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_OK 0
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP_ 6
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10
#define MAX_OPT_LEN 40 /* TCP options: 60 - 20 bytes of fixed header */

/* The dialects written on the wire, set from `--toa` before load. */
const volatile __u8 toa_kind4 = 254;
const volatile __u8 toa_kind6 = 253;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct toa_insert_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct toa_insert_conn_key);
	__type(value, struct toa_insert_conn);
} handshakes SEC(".maps");

#define COUNT(field)                                                     \
	do {                                                             \
		struct toa_insert_counters *__c = tcplens_counters(&counters); \
		if (__c)                                                 \
			__c->field++;                                    \
	} while (0)

/* Where a TCP segment sits in the frame and what the IP header says about it. */
struct segment {
	__u32 l3;      /* IP header offset */
	__u32 l4;      /* TCP header offset */
	__u32 tcp_len; /* TCP header + payload, from the IP header */
	__u32 hdr_len; /* TCP header with options */
	__u8 flags;
	__u8 family;
	__u32 seq;     /* host order */
	struct toa_insert_conn_key key;
};

static __always_inline int parse(struct __sk_buff *skb, struct segment *s)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u8 *tcp;

	if ((void *)(eth + 1) > end)
		return -1;
	s->l3 = ETH_HLEN;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP_)
			return -1;
		if (ip->frag_off & bpf_htons(0x3fff)) /* a fragment has no whole TCP header */
			return -1;
		ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip))
			return -1;
		s->l4 = ETH_HLEN + ihl;
		s->tcp_len = bpf_ntohs(ip->tot_len) - ihl;
		s->family = 4;
		__builtin_memcpy(s->key.saddr, &ip->saddr, 4);
		__builtin_memcpy(s->key.daddr, &ip->daddr, 4);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		/* Extension headers before TCP: not something a lab client sends. */
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP_)
			return -1;
		s->l4 = ETH_HLEN + sizeof(*ip6);
		s->tcp_len = bpf_ntohs(ip6->payload_len);
		s->family = 6;
		__builtin_memcpy(s->key.saddr, &ip6->saddr, 16);
		__builtin_memcpy(s->key.daddr, &ip6->daddr, 16);
	} else {
		return -1;
	}
	if (s->l4 > 120)
		return -1;
	tcp = data + s->l4;
	if ((void *)(tcp + 20) > end)
		return -1;
	s->hdr_len = (tcp[12] >> 4) * 4;
	if (s->hdr_len < 20 || s->hdr_len > s->tcp_len)
		return -1;
	s->flags = tcp[13];
	s->seq = bpf_ntohl(*(__u32 *)(tcp + 4));
	__builtin_memcpy(&s->key.sport, tcp, 2);
	__builtin_memcpy(&s->key.dport, tcp + 2, 2);
	s->key.family = s->family;
	return 0;
}

/*
 * The options region as it leaves the balancer: the TOA right after the fixed header, then the
 * client's own options, moved down (DPVS/LVS tcp_in_add_toa). Appending instead would put a
 * TOA the client forged on its own SYN ahead of ours. Both regions go into `nw`; `old` keeps
 * the bytes they replace, for the checksum. Sizes are multiples of 4 and bounded by the caller.
 */
static __always_inline int options_region(struct __sk_buff *skb, const struct segment *s, __u8 *old, __u8 *nw,
					  __u32 optlen, const __u32 len)
{
	/* len is a constant at each call (8 or 20), so every offset into nw is fixed for the verifier. */
	if (optlen > MAX_OPT_LEN - len)
		return -1;
	if (optlen && bpf_skb_load_bytes(skb, s->l4 + 20, nw + len, optlen))
		return -1;
	nw[0] = s->family == 4 ? toa_kind4 : toa_kind6;
	nw[1] = len;
	__builtin_memcpy(nw + 2, &s->key.sport, 2);
	__builtin_memcpy(nw + 4, s->key.saddr, len - 4);
	if (optlen && bpf_skb_load_bytes(skb, s->l4 + 20, old, optlen))
		return -1;
	return 0;
}

/* Grow the segment by the option, rewrite the options region TOA first, fix lengths and sums. */
static __always_inline int insert(struct __sk_buff *skb, const struct segment *s)
{
	__u8 old[MAX_OPT_LEN] = {};
	__u8 nw[MAX_OPT_LEN] = {};
	__u32 len = s->family == 4 ? 8 : 20;
	__u32 optlen = (s->hdr_len - 20) & 0x3c; /* doff * 4 - 20: a multiple of 4 already */
	__u32 newlen;
	__u32 csum_off = s->l4 + 16;
	__u16 old_word, new_word, old_l3len, new_l3len;
	__u8 hdr12[2];
	__s64 diff;

	if (optlen > MAX_OPT_LEN)
		return -1;
	if (s->family == 4 ? options_region(skb, s, old, nw, optlen, 8) : options_region(skb, s, old, nw, optlen, 20))
		return -1;
	newlen = optlen + len;
	if (newlen > MAX_OPT_LEN || newlen < 8)
		return -1;

	if (bpf_skb_load_bytes(skb, s->l4 + 12, hdr12, 2))
		return -1;
	__builtin_memcpy(&old_word, hdr12, 2);
	hdr12[0] = (((20 + newlen) / 4) << 4) | (hdr12[0] & 0x0f);
	__builtin_memcpy(&new_word, hdr12, 2);

	/* Trims any link padding and appends `len` bytes: the segment is all header (no payload). */
	if (bpf_skb_change_tail(skb, s->l4 + s->tcp_len + len, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, s->l4 + 20, nw, newlen, BPF_F_RECOMPUTE_CSUM))
		return -1;
	if (bpf_skb_store_bytes(skb, s->l4 + 12, hdr12, 1, BPF_F_RECOMPUTE_CSUM))
		return -1;

	if (s->family == 4) {
		old_l3len = bpf_htons(s->tcp_len + s->l4 - s->l3);
		new_l3len = bpf_htons(s->tcp_len + s->l4 - s->l3 + len);
		if (bpf_skb_store_bytes(skb, s->l3 + 2, &new_l3len, 2, BPF_F_RECOMPUTE_CSUM))
			return -1;
		if (bpf_l3_csum_replace(skb, s->l3 + 10, old_l3len, new_l3len, 2))
			return -1;
	} else {
		old_l3len = bpf_htons(s->tcp_len);
		new_l3len = bpf_htons(s->tcp_len + len);
		if (bpf_skb_store_bytes(skb, s->l3 + 4, &new_l3len, 2, BPF_F_RECOMPUTE_CSUM))
			return -1;
	}
	/* The pseudo header's TCP length, the doff word, then old options -> TOA + old options. */
	if (bpf_l4_csum_replace(skb, csum_off, bpf_htons(s->tcp_len), bpf_htons(s->tcp_len + len),
				BPF_F_PSEUDO_HDR | 2))
		return -1;
	if (bpf_l4_csum_replace(skb, csum_off, old_word, new_word, 2))
		return -1;
	diff = bpf_csum_diff((__be32 *)old, optlen, (__be32 *)nw, newlen, 0);
	if (diff < 0 || bpf_l4_csum_replace(skb, csum_off, 0, diff, 0))
		return -1;
	return 0;
}

static __always_inline int handle(struct __sk_buff *skb)
{
	struct segment s = {};
	struct toa_insert_conn *hs;
	__u32 len;

	if (parse(skb, &s))
		return TC_ACT_OK;
	if (s.flags & (TCP_FLAG_RST | TCP_FLAG_FIN))
		return TC_ACT_OK;

	if ((s.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
		struct toa_insert_conn next = { .ack_seq = s.seq + 1 };

		bpf_map_update_elem(&handshakes, &s.key, &next, BPF_ANY);
	} else if ((s.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_ACK) {
		hs = bpf_map_lookup_elem(&handshakes, &s.key);
		if (!hs || hs->ack_seq != s.seq)
			return TC_ACT_OK;
		bpf_map_delete_elem(&handshakes, &s.key);
	} else {
		return TC_ACT_OK;
	}

	len = s.family == 4 ? 8 : 20;
	if (s.hdr_len != s.tcp_len) {
		COUNT(skipped_payload);
		return TC_ACT_OK;
	}
	if (s.hdr_len - 20 + len > MAX_OPT_LEN) {
		COUNT(skipped_no_room);
		return TC_ACT_OK;
	}
	if (insert(skb, &s)) {
		COUNT(failed);
		return TC_ACT_OK;
	}
	if (s.flags & TCP_FLAG_SYN)
		COUNT(inserted_syn);
	else
		COUNT(inserted_ack);
	return TC_ACT_OK;
}

SEC("tc")
int toa_insert(struct __sk_buff *skb)
{
	return handle(skb);
}

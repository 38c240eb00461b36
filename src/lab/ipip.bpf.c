// SPDX-License-Identifier: GPL-2.0
/*
 * tcplens lab: IPIP (IPv4 in IPv4, protocol 4) between gateway nodes and pod nodes, as Calico
 * runs it, with TC programs because this kernel has no ipip device. On a node's fabric device,
 * egress wraps every IPv4 packet to or from a pod address in an outer header from node to node
 * (which node holds which pod: the `pod_nodes` map), and ingress unwraps what arrives. Captures
 * on the fabric therefore see real IPIP packets, both ways; behind the node, the pod sees plain ones.
 */
#include "tcplens.h"
#include "ipip.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_OK 0
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IPPROTO_IPIP_ 4

/* The pods' addresses: (addr & pod_mask) == pod_net, both in network order. */
const volatile __u32 pod_net;
const volatile __u32 pod_mask;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);   /* pod address, network order */
	__type(value, __u32); /* its node's fabric address, network order */
} pod_nodes SEC(".maps");

TCPLENS_COUNTERS(struct ipip_counters);

#define COUNT(field) TCPLENS_COUNT(struct ipip_counters, field)

static __always_inline struct iphdr *ipv4_of(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return 0;
	return ip;
}

static __always_inline int is_pod(__u32 addr)
{
	return (addr & pod_mask) == pod_net;
}

static __always_inline __u16 ip_checksum(struct iphdr *h)
{
	__u32 sum = 0, i;
	__u16 *w = (__u16 *)h;

	for (i = 0; i < sizeof(*h) / 2; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("tc")
int ipip_encap(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_of(skb), outer = {};
	__u32 src, dst, *node;

	if (!ip || ip->protocol == IPPROTO_IPIP_)
		return TC_ACT_OK;
	src = ip->saddr;
	dst = ip->daddr;
	if (is_pod(dst)) { /* to a pod: to its node, from us */
		node = bpf_map_lookup_elem(&pod_nodes, &dst);
		if (!node) {
			COUNT(no_node);
			return TC_ACT_OK;
		}
		outer.daddr = *node;
		outer.saddr = src;
	} else if (is_pod(src)) { /* from a pod behind this node: from the node */
		node = bpf_map_lookup_elem(&pod_nodes, &src);
		if (!node) {
			COUNT(no_node);
			return TC_ACT_OK;
		}
		outer.saddr = *node;
		outer.daddr = dst;
	} else {
		return TC_ACT_OK;
	}
	outer.version = 4;
	outer.ihl = 5;
	outer.tos = ip->tos;
	outer.tot_len = bpf_htons(bpf_ntohs(ip->tot_len) + sizeof(outer));
	outer.frag_off = bpf_htons(0x4000); /* DF, as the inner packets of TCP carry it */
	outer.ttl = 64;
	outer.protocol = IPPROTO_IPIP_;
	outer.check = ip_checksum(&outer);
	if (bpf_skb_adjust_room(skb, sizeof(outer), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &outer, sizeof(outer), 0)) {
		COUNT(failed);
		return TC_ACT_OK;
	}
	COUNT(encapsulated);
	return TC_ACT_OK;
}

SEC("tc")
int ipip_decap(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_of(skb);

	if (!ip || ip->protocol != IPPROTO_IPIP_)
		return TC_ACT_OK;
	if (bpf_skb_adjust_room(skb, -(__s32)sizeof(*ip), BPF_ADJ_ROOM_MAC, 0)) {
		COUNT(failed);
		return TC_ACT_OK;
	}
	COUNT(decapsulated);
	return TC_ACT_OK;
}

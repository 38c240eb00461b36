/* tcplens lab: the IPIP tunnel's counters. Data only. */
#ifndef TCPLENS_LAB_IPIP_H
#define TCPLENS_LAB_IPIP_H

struct ipip_counters {
	__u64 encapsulated;  /* IPv4 packets to or from a pod, sent wrapped in an outer IPv4 header */
	__u64 decapsulated;  /* IPIP packets unwrapped on arrival */
	__u64 no_node;       /* a pod address with no node in the map: sent as it was */
	__u64 failed;        /* a helper refused (growing or shrinking the packet, writing the header) */
};

#endif

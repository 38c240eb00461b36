/*
 * tcplens http: the socket filter's data. Only data lives here (no code): the counters user space
 * reads by field name through BTF and the shape of a --host range in rodata.
 */
#ifndef TCPLENS_HTTP_H
#define TCPLENS_HTTP_H

/* --host flags the filter holds; more are refused by the CLI. */
#define HTTP_MAX_HOSTS 16

/* A --host CIDR: net and mask as the address bytes are on the wire (compared as 4 words). */
struct http_host_range {
	__u32 net[4];
	__u32 mask[4];
	__u8 family; /* 4 or 6 */
	__u8 _pad[3];
};

/* Per-CPU; every field a __u64 counted once per frame the filter saw. `lost` is the common first
 * field of TCPLENS_COUNTERS (this program emits no events: it stays 0). */
struct http_counters {
	__u64 lost;
	__u64 frames;
	__u64 kept;
	__u64 drop_not_ip;      /* not IPv4/IPv6, or more than 2 VLAN tags */
	__u64 drop_not_tcp;     /* UDP, ICMP, ...; a tunnel inside a tunnel */
	__u64 drop_fragment;
	__u64 drop_malformed;   /* bad or truncated Ethernet, IP, extension or TCP header */
	__u64 drop_port;
	__u64 drop_host;
};

#endif

/*
 * accel: the socket key and the counters. The ONLY definition of these layouts; TypeScript
 * reads them from BTF.
 */
#ifndef TCPLENS_ACCEL_CAP_H
#define TCPLENS_ACCEL_CAP_H

#include "tcplens.h"

#define ACCEL_MAX_PORTS 16
#define ACCEL_MAX_SOCKETS 65536

/* One end of a connection, as seen from that end: its network namespace, the family ON THE WIRE
 * (an IPv4 peer of an IPv6 socket, v4-mapped, is family 4) and both endpoints. The peer socket's
 * key is this one with local and remote swapped. */
struct accel_key {
	__u64 netns;        /* bpf_get_netns_cookie */
	__u32 family;       /* 4 or 6 */
	__u32 local_port;   /* host order */
	__u32 remote_port;  /* host order */
	__u32 local_ip[4];  /* network order; IPv4 in [0], the rest 0 */
	__u32 remote_ip[4];
};

/* Per socket (socket storage): set once a message of this socket went the normal way while the
 * socket was in the map. From then on it never redirects: data the peer has not read yet may sit
 * in its TCP receive queue, and a redirected message would be read BEFORE it (the receiver drains
 * its redirect queue first). */
struct accel_sock_state {
	__u8 passed;
	__u8 _pad[7];
};

struct accel_counters {
	__u64 lost;              /* the shared counters layout starts with it; accel has no ring: 0 */
	__u64 established;       /* established connections seen in the cgroup (either end) */
	__u64 filtered;          /* ... not on one of the --port ports */
	__u64 inserted;          /* sockets put into the map */
	__u64 not_local;         /* passive ends whose peer is not in the map (remote or other netns): left out */
	__u64 insert_failed;     /* the map refused a socket (full, say): left out, plain TCP */
	__u64 redirected_msgs;   /* messages handed straight to the peer socket */
	__u64 redirected_bytes;
	__u64 passed_msgs;       /* messages sent the normal way by a socket that went the normal way before */
	__u64 passed_bytes;
	__u64 memory_high;       /* sockets sent back to the normal way: TCP memory past tcp_mem[0] (no flow control on redirect) */
	__u64 no_peer_msgs;      /* messages sent the normal way: the peer socket is not in the map */
	__u64 no_peer_bytes;
	__u64 state_failed;      /* socket storage could not be allocated: sent the normal way */
};

#endif

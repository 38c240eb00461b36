/* accept: the event and counters. The ONLY definition of this layout; TypeScript reads it from BTF. */
#ifndef TCPLENS_ACCEPT_H
#define TCPLENS_ACCEPT_H

#include "tcplens.h"

/* flags */
#define ACCEPT_F_CLIENT    0x01 /* client holds the real client (a trusted TOA) */
#define ACCEPT_F_TOA       0x02 /* a TOA was found (trusted or not) */
#define ACCEPT_F_UNTRUSTED 0x04 /* the TOA came from a peer outside --trusted-lb */
#define ACCEPT_F_MALFORMED 0x08 /* TOA-kind option with a wrong length, or cut-short options */
#define ACCEPT_F_CONFLICT  0x10 /* two or more TOAs in one header */
#define ACCEPT_F_SUMMARY   0x20 /* a merge window closing: the final count of a key already reported */

/* where the TOA came from */
#define ACCEPT_SRC_NONE  0
#define ACCEPT_SRC_ACK   1 /* handshake-completing ACK */
#define ACCEPT_SRC_SYN   2 /* saved SYN (TCP_SAVE_SYN) */
#define ACCEPT_SRC_TOAKO 3 /* toa.ko's sk->sk_user_data */

struct accept_event {
	__u64 first_ns;  /* CLOCK_MONOTONIC of the first connection in the window */
	__u64 last_ns;   /* ... and of the last */
	__u64 kernel_ns; /* in-kernel cost, summed over the merged connections */
	__u64 netns;     /* network namespace cookie */
	__u64 cgroup_id; /* the cgroup of the listening socket (its creator's) */
	__u32 netns_ino; /* the network namespace as /proc/PID/ns/net names it */
	__u32 count;     /* connections in this event (a summary: in the whole window) */
	__u32 pid;       /* the process that called listen(), 0 if unknown */
	struct tcplens_endpoint local;
	struct tcplens_endpoint peer;
	struct tcplens_endpoint client; /* the claimed TOA address (used only if ACCEPT_F_CLIENT) */
	__u8 toa_kind;
	__u8 toa_len;
	__u8 toa_source;
	__u8 flags;
	__u8 ttl;        /* IP TTL / hop limit the client's handshake arrived with (0: unknown) */
	char comm[16];
};

/* Merge key: remote ports are left out; the peer (balancer) is left out when a client is known,
 * because a FULLNAT balancer picks a different local address/port per connection. */
struct accept_key {
	__u64 netns;
	__u8 local[16];
	__u8 peer[16];
	__u8 client[16];
	__u16 lport;
	__u8 family;
	__u8 client_family;
	__u32 _pad;
};

struct accept_listener_key {
	__u64 netns;
	__u16 port;
	__u16 _pad[3];
};

struct accept_listener {
	__u32 pid;
	char comm[16];
};

struct accept_counters {
	__u64 lost;          /* ring buffer full */
	__u64 connections;   /* passively established connections seen */
	__u64 events;        /* events handed to the ring (first sightings, summaries, unmerged) */
	__u64 merged;        /* connections counted into an open window */
	__u64 merge_full;    /* the merge map was full: the event went out unmerged */
	__u64 toa_seen;
	__u64 toa_untrusted;
	__u64 toa_malformed;
	__u64 toa_conflict;  /* two or more TOAs in one header */
	__u64 no_toa;
	__u64 filtered;      /* left out by --port / -4 / -6 */
};

#endif

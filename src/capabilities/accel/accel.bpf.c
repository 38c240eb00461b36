// SPDX-License-Identifier: GPL-2.0
/*
 * tcplens accel: local TCP connections skip the stack between their two sockets.
 *
 * sock_ops sees each connection of the cgroup as it becomes established. The active end goes
 * into the SOCKHASH at once; the passive end only when its peer (the active end, established a
 * moment earlier on this host, same netns) is already there, so server sockets of remote
 * clients never pay for the map.
 * sk_msg runs on every sendmsg of a socket in the map: the peer's key is the sender's with the
 * ends swapped; if the peer is in the map the message goes straight into its receive queue,
 * otherwise it goes the normal way untouched.
 */
#include "tcplens.h"
#include "accel.h" /* this directory's accel.h: key, socket state, counters */

char LICENSE[] SEC("license") = "GPL";

/* --port: a connection is accelerated when either end uses one of these (none given: all). */
const volatile __u32 port_count;
const volatile __u16 ports[ACCEL_MAX_PORTS];

/* A redirect has no flow control: the data lands in the peer's queue whatever its size, and once
 * the kernel cannot charge more memory the SENDER's write() fails with ENOMEM (measured: 300 busy
 * connections, 4 s, 2.5 GB queued). So past tcp_mem[0] a socket goes the normal way, where TCP's
 * window makes the sender wait, and stays there (see accel_sock_state). */
TCPLENS_COUNTERS(struct accel_counters);

/* Shared by every program set `tcplens accel enable` loads, so a reconfiguration keeps the
 * sockets already in it (and the sk_msg programs those sockets still run refer to it). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, ACCEL_MAX_SOCKETS);
	__type(key, struct accel_key);
	__type(value, __u64);
} socks SEC(".maps");

/* Active ends put into socks, so that a passive end can tell whether its peer is on this host
 * (sock_ops may not look into a SOCKHASH: the lookup hands out a socket reference it cannot give
 * back). LRU: an entry outliving its connection or evicted early only costs a socket in the map
 * that passes, or one that is not accelerated; never a wrong redirect (socks decides that). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ACCEL_MAX_SOCKETS);
	__type(key, struct accel_key);
	__type(value, __u8);
} active_ends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct accel_sock_state);
} sock_state SEC(".maps");

#define COUNT(field) TCPLENS_COUNT(struct accel_counters, field)

static __always_inline void count_msg(int what, __u64 bytes)
{
	struct accel_counters *c = tcplens_counters(&counters);

	if (!c)
		return;
	if (what == 0) {
		c->redirected_msgs++;
		c->redirected_bytes += bytes;
	} else if (what == 1) {
		c->passed_msgs++;
		c->passed_bytes += bytes;
	} else {
		c->no_peer_msgs++;
		c->no_peer_bytes += bytes;
	}
}

static __always_inline int port_selected(__u32 a, __u32 b)
{
	__u32 n = port_count;

	if (n == 0)
		return 1;
	for (int i = 0; i < ACCEL_MAX_PORTS; i++) {
		__u16 p = ports[i];

		if (i >= n)
			break;
		if (p == a || p == b)
			return 1;
	}
	return 0;
}

/* Both context types lay the endpoints out alike (remote_port network order in the upper half,
 * local_port host order); a macro keeps every load at a fixed context offset. */
#define FILL_KEY(ctx, k)                                                                        \
	do {                                                                                    \
		(k)->netns = bpf_get_netns_cookie(ctx);                                         \
		(k)->local_port = (ctx)->local_port;                                            \
		(k)->remote_port = bpf_ntohl((ctx)->remote_port) & 0xffff;                      \
		if ((ctx)->family == AF_INET) {                                                 \
			(k)->family = 4;                                                        \
			(k)->local_ip[0] = (ctx)->local_ip4;                                    \
			(k)->remote_ip[0] = (ctx)->remote_ip4;                                  \
		} else {                                                                        \
			__u32 r0 = (ctx)->remote_ip6[0], r1 = (ctx)->remote_ip6[1];             \
			__u32 r2 = (ctx)->remote_ip6[2], r3 = (ctx)->remote_ip6[3];             \
			__u32 l0 = (ctx)->local_ip6[0], l1 = (ctx)->local_ip6[1];               \
			__u32 l2 = (ctx)->local_ip6[2], l3 = (ctx)->local_ip6[3];               \
			asm volatile("" : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3));              \
			asm volatile("" : "+r"(l0), "+r"(l1), "+r"(l2), "+r"(l3));              \
			if (r0 == 0 && r1 == 0 && r2 == bpf_htonl(0xffff)) {                    \
				/* v4-mapped: the IPv4 connection on the wire */                \
				(k)->family = 4;                                                \
				(k)->local_ip[0] = l3;                                          \
				(k)->remote_ip[0] = r3;                                         \
			} else {                                                                \
				(k)->family = 6;                                                \
				(k)->local_ip[0] = l0; (k)->local_ip[1] = l1;                   \
				(k)->local_ip[2] = l2; (k)->local_ip[3] = l3;                   \
				(k)->remote_ip[0] = r0; (k)->remote_ip[1] = r1;                 \
				(k)->remote_ip[2] = r2; (k)->remote_ip[3] = r3;                 \
			}                                                                       \
		}                                                                               \
	} while (0)

static __always_inline void peer_key(const struct accel_key *k, struct accel_key *p)
{
	p->netns = k->netns;
	p->family = k->family;
	p->local_port = k->remote_port;
	p->remote_port = k->local_port;
	for (int i = 0; i < 4; i++) {
		p->local_ip[i] = k->remote_ip[i];
		p->remote_ip[i] = k->local_ip[i];
	}
}

static __always_inline int on_established(struct bpf_sock_ops *skops, int passive)
{
	struct accel_key k = {}, p = {};

	COUNT(established);
	FILL_KEY(skops, &k);
	if (!port_selected(k.local_port, k.remote_port)) {
		COUNT(filtered);
		return 1;
	}
	if (passive) {
		peer_key(&k, &p);
		if (!bpf_map_lookup_elem(&active_ends, &p)) {
			COUNT(not_local);
			return 1;
		}
		bpf_map_delete_elem(&active_ends, &p);
	}
	if (bpf_sock_hash_update(skops, &socks, &k, BPF_NOEXIST) != 0) {
		COUNT(insert_failed);
		return 1;
	}
	COUNT(inserted);
	if (!passive) {
		__u8 one = 1;

		bpf_map_update_elem(&active_ends, &k, &one, BPF_ANY);
	}
	return 1;
}

/*
 * TCP memory of the whole host is past tcp_mem[0] (where the kernel starts to economise): the
 * sender reaches it through its own socket's proto. (sk_msg may not look up the peer socket
 * itself: a SOCKHASH lookup takes a reference this program type cannot give back.)
 */
static __always_inline int tcp_memory_high(struct tcp_sock *tp)
{
	struct proto *prot = tp->inet_conn.icsk_inet.sk.__sk_common.skc_prot;
	long *limits = BPF_CORE_READ(prot, sysctl_mem);
	atomic_long_t *allocated = BPF_CORE_READ(prot, memory_allocated);
	long low = 0, now = 0;

	if (!limits || !allocated)
		return 0;
	bpf_probe_read_kernel(&low, sizeof(low), limits);
	bpf_probe_read_kernel(&now, sizeof(now), allocated);
	return now > low;
}

static __always_inline int on_msg(struct sk_msg_md *msg)
{
	struct accel_key k = {}, p = {};
	struct accel_sock_state *st;
	__u64 bytes = msg->size;
	struct bpf_sock *sk = msg->sk;
	struct tcp_sock *tp;

	if (!sk)
		return SK_PASS;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return SK_PASS;
	st = bpf_sk_storage_get(&sock_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		COUNT(state_failed);
		count_msg(1, bytes);
		return SK_PASS;
	}
	if (st->passed) {
		count_msg(1, bytes);
		return SK_PASS;
	}
	if (tcp_memory_high(tp)) {
		COUNT(memory_high);
		st->passed = 1;
		count_msg(1, bytes);
		return SK_PASS;
	}
	FILL_KEY(msg, &k);
	peer_key(&k, &p);
	/* It fails only when the peer is not in the map (another host, another netns, opened before
	 * enable, or closed meanwhile): then the message goes the normal way. */
	if (bpf_msg_redirect_hash(msg, &socks, &p, BPF_F_INGRESS) != SK_PASS) {
		st->passed = 1;
		count_msg(2, bytes);
		return SK_PASS;
	}
	count_msg(0, bytes);
	return SK_PASS;
}

SEC("sockops")
int accel_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		return on_established(skops, 0);
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		return on_established(skops, 1);
	}
	return 1;
}

SEC("sk_msg")
int accel_msg(struct sk_msg_md *msg)
{
	return on_msg(msg);
}

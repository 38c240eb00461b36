// SPDX-License-Identifier: GPL-2.0
/*
 * tcplens accept: every passively established TCP connection with its real client.
 *
 * One sock_ops program on a cgroup does it all at PASSIVE_ESTABLISHED: the TOA from the
 * handshake-completing ACK or the saved SYN, else toa.ko's sk_user_data (toa.ko sets it when the
 * child socket is made, before this callback), the trust decision, merging, the ring buffer.
 * (A tp_btf/inet_sock_set_state stage was measured and dropped: it fires on every TCP state
 * change on the host, and handing each connection over through socket storage cost more than
 * the rest of the work together.)
 */
#include "tcplens.h"
#include "toa-sockops.h"
#include "trust.h"
#include "accept.h"

char LICENSE[] SEC("license") = "GPL";

#define MAX_PORTS 8

const volatile __u64 merge_window_ns = 10000000000ULL;
const volatile __u8 filter_family; /* 0 = both, 4, 6 */
const volatile __u16 filter_ports[MAX_PORTS];
const volatile __u32 filter_port_count;
const volatile __u8 save_syn = 1;
/* set when toa.ko is loaded on the host: only then is sk_user_data worth reading */
const volatile __u8 read_toako;

TCPLENS_RINGBUF(4 << 20);
TCPLENS_COUNTERS(struct accept_counters);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct accept_key);
	__type(value, struct accept_event);
} merge SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct accept_listener_key);
	__type(value, struct accept_listener);
} listeners SEC(".maps");

static __always_inline int port_wanted(__u16 port)
{
	__u32 i;

	if (filter_port_count == 0)
		return 1;
	for (i = 0; i < MAX_PORTS; i++) {
		if (i >= filter_port_count)
			break;
		if (filter_ports[i] == port)
			return 1;
	}
	return 0;
}

/* Fill local/peer; an IPv4 peer on an IPv6 socket (v4-mapped) is reported as IPv4. */
static __always_inline void fill_endpoints(struct bpf_sock_ops *skops, struct accept_event *ev)
{
	ev->local.port = skops->local_port;
	ev->peer.port = bpf_ntohl(skops->remote_port) & 0xffff;
	if (skops->family == AF_INET6 &&
	    !(skops->remote_ip6[0] == 0 && skops->remote_ip6[1] == 0 &&
	      skops->remote_ip6[2] == bpf_htonl(0xffff))) {
		__u32 *l = (__u32 *)ev->local.addr, *r = (__u32 *)ev->peer.addr;

		ev->local.family = ev->peer.family = 6;
		l[0] = skops->local_ip6[0];
		l[1] = skops->local_ip6[1];
		l[2] = skops->local_ip6[2];
		l[3] = skops->local_ip6[3];
		r[0] = skops->remote_ip6[0];
		r[1] = skops->remote_ip6[1];
		r[2] = skops->remote_ip6[2];
		r[3] = skops->remote_ip6[3];
		return;
	}
	/* A plain ?: here becomes a computed context offset, which the verifier refuses; the asm
	 * keeps both loads at fixed offsets. */
	{
		__u32 l = skops->local_ip4, r = skops->remote_ip4;

		if (skops->family == AF_INET6) {
			l = skops->local_ip6[3];
			r = skops->remote_ip6[3];
			asm volatile("" : "+r"(l), "+r"(r));
		}
		ev->local.family = ev->peer.family = 4;
		*(__u32 *)ev->local.addr = l;
		*(__u32 *)ev->peer.addr = r;
	}
}

static __always_inline void take_toa(struct accept_event *ev, const struct toa_found *t, __u8 source)
{
	ev->toa_kind = t->kind;
	ev->toa_len = t->len;
	ev->toa_source = source;
	ev->flags |= ACCEPT_F_TOA;
	ev->client.family = t->family;
	ev->client.port = t->port;
	__builtin_memcpy(ev->client.addr, t->addr, 16);
}

/* listen(): remember who listens on the port (we are in the process's context here), and ask
 * the kernel to keep each SYN so its options can be read once the connection is established. */
static __always_inline int on_listen(struct bpf_sock_ops *skops)
{
	struct accept_listener_key key = { .netns = bpf_get_netns_cookie(skops), .port = skops->local_port };
	struct accept_listener who = { .pid = bpf_get_current_pid_tgid() >> 32 };

	bpf_get_current_comm(who.comm, sizeof(who.comm));
	bpf_map_update_elem(&listeners, &key, &who, BPF_ANY);
	if (save_syn)
		toa_save_syn(skops);
	return 1;
}

static __always_inline void count_toa(struct accept_counters *c, struct accept_event *ev)
{
	if (ev->flags & ACCEPT_F_TOA) {
		c->toa_seen++;
		if (ev->flags & ACCEPT_F_UNTRUSTED)
			c->toa_untrusted++;
	} else {
		c->no_toa++;
		if (ev->flags & ACCEPT_F_MALFORMED)
			c->toa_malformed++;
	}
}

static __always_inline void emit(struct accept_counters *c, struct accept_event *ev)
{
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		c->lost++;
	else
		c->events++;
}

/* Count a repeat into the live event for its key, or start a new window. An expired event is
 * taken out with delete-then-emit so the kernel and the user-space sweeper never both emit it. */
static __always_inline void merge_or_emit(struct accept_counters *c, struct accept_event *ev)
{
	struct accept_key key = {};
	struct accept_event *cur;

	if (merge_window_ns == 0) {
		emit(c, ev);
		return;
	}
	key.netns = ev->netns;
	key.family = ev->local.family;
	key.lport = ev->local.port;
	__builtin_memcpy(key.local, ev->local.addr, 16);
	if (ev->flags & ACCEPT_F_CLIENT) {
		key.client_family = ev->client.family;
		__builtin_memcpy(key.client, ev->client.addr, 16);
	} else {
		__builtin_memcpy(key.peer, ev->peer.addr, 16);
	}

	cur = bpf_map_lookup_elem(&merge, &key);
	if (cur) {
		if (ev->first_ns - cur->first_ns < merge_window_ns) {
			__sync_fetch_and_add(&cur->count, 1);
			__sync_fetch_and_add(&cur->kernel_ns, ev->kernel_ns);
			cur->last_ns = ev->first_ns;
			c->merged++;
			return;
		}
		{
			struct accept_event done = *cur;

			if (bpf_map_delete_elem(&merge, &key) == 0)
				emit(c, &done);
		}
	}
	if (bpf_map_update_elem(&merge, &key, ev, BPF_NOEXIST)) {
		/* another CPU opened this window a moment ago */
		cur = bpf_map_lookup_elem(&merge, &key);
		if (cur) {
			__sync_fetch_and_add(&cur->count, 1);
			__sync_fetch_and_add(&cur->kernel_ns, ev->kernel_ns);
			c->merged++;
		} else {
			emit(c, ev);
		}
	}
}

/* toa.ko keeps the option by value in sk_user_data; read it as a raw value (the verifier would
 * type it as a pointer). */
static __always_inline int toa_from_sk_user_data(struct bpf_sock *sk, struct toa_found *toa)
{
	struct tcp_sock *tp = sk ? bpf_skc_to_tcp_sock(sk) : 0;
	__u64 ud = 0;

	if (!tp)
		return TOA_NONE;
	bpf_probe_read_kernel(&ud, sizeof(ud), &tp->inet_conn.icsk_inet.sk.sk_user_data);
	return toa_from_toako(ud, toa);
}

static __always_inline int on_passive_established(struct bpf_sock_ops *skops)
{
	__u64 start = bpf_ktime_get_ns();
	struct accept_counters *c = tcplens_counters(&counters);
	struct accept_event ev = {};
	struct toa_found toa = {}, ko = {};
	int from;

	if (!c)
		return 1;
	fill_endpoints(skops, &ev);
	if ((filter_family && filter_family != ev.local.family) || !port_wanted(ev.local.port)) {
		c->filtered++;
		return 1;
	}
	c->connections++;
	ev.first_ns = ev.last_ns = start;
	ev.count = 1;
	ev.netns = bpf_get_netns_cookie(skops);

	from = toa_from_handshake(skops, &toa, save_syn);
	if (from != TOA_FROM_NONE)
		take_toa(&ev, &toa, from == TOA_FROM_ACK ? ACCEPT_SRC_ACK : ACCEPT_SRC_SYN);
	else if (read_toako && toa_from_sk_user_data(skops->sk, &ko) == TOA_FOUND)
		take_toa(&ev, &ko, ACCEPT_SRC_TOAKO);
	else if (toa.status == TOA_MALFORMED)
		ev.flags |= ACCEPT_F_MALFORMED;
	if (ev.flags & ACCEPT_F_TOA)
		ev.flags |= peer_is_trusted(&ev.peer) ? ACCEPT_F_CLIENT : ACCEPT_F_UNTRUSTED;
	count_toa(c, &ev);

	{
		struct accept_listener_key key = { .netns = ev.netns, .port = ev.local.port };
		struct accept_listener *who = bpf_map_lookup_elem(&listeners, &key);

		if (who) {
			ev.pid = who->pid;
			__builtin_memcpy(ev.comm, who->comm, sizeof(ev.comm));
		}
	}
	ev.kernel_ns = bpf_ktime_get_ns() - start;
	merge_or_emit(c, &ev);
	return 1;
}

SEC("sockops")
int accept_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		return on_listen(skops);
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		return on_passive_established(skops);
	}
	return 1;
}

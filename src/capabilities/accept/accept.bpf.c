// SPDX-License-Identifier: GPL-2.0
/*
 * tcplens accept: every passively established TCP connection with its real client.
 *
 * One sock_ops program on a cgroup does it all at PASSIVE_ESTABLISHED: the TOA from the
 * handshake-completing ACK or (with --save-syn) the saved SYN, else toa.ko's sk_user_data (toa.ko
 * sets it when the child socket is made, before this callback), the trust decision, merging, the
 * ring buffer. (A tp_btf/inet_sock_set_state stage was measured and dropped: it fires on every TCP
 * state change on the host, and handing each connection over through socket storage cost more
 * than the rest of the work together.)
 *
 * Merging: the first connection of a key goes to the ring at once; repeats within the window are
 * counted in the `merge` map, and the window's final count goes out as a summary when it closes
 * (here, when the next connection of the key finds it expired, or from user space's sweep). The
 * map is a plain hash without preallocation: when it is full, updates fail visibly and the event
 * goes out unmerged (merge_full), and a looked-up element is never reused under our feet (an LRU
 * hash evicts open windows silently and recycles elements at once).
 */
#include "tcplens.h"
#include "toa-sockops.h"
#include "trust.h"
#include "sockops-endpoint.h"
#include "save-syn.h"
#include "accept.h"

char LICENSE[] SEC("license") = "GPL";

#define MAX_PORTS 8
#define EEXIST_ 17

const volatile __u64 merge_window_ns = 10000000000ULL;
const volatile __u8 filter_family; /* 0 = both, 4, 6 */
const volatile __u16 filter_ports[MAX_PORTS];
const volatile __u32 filter_port_count;
const volatile __u8 save_syn;
/* set when toa.ko is loaded on the host: only then is sk_user_data worth reading */
const volatile __u8 read_toako;
/* two TOAs in one header: 0 = believe none, 1 = the first (balancers known to write theirs first) */
const volatile __u8 conflict_take_first;
/* pid/comm from the listen() call: only where sock_ops may call bpf_get_current_comm (refused on
 * 6.12 and older; the verifier skips the code when this is 0) */
const volatile __u8 listener_names;
/* set when an fexit/kretprobe on inet_csk_accept is attached: events wait in `pending` for the
 * accepting process, which names them exactly */
const volatile __u8 acceptor_names;

TCPLENS_RINGBUF(4 << 20);
TCPLENS_COUNTERS(struct accept_counters);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384); /* --merge-capacity */
	__type(key, struct accept_key);
	__type(value, struct accept_event);
} merge SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct accept_listener_key);
	__type(value, struct accept_listener);
} listeners SEC(".maps");

/* Established connections waiting for accept(), by socket cookie. A plain hash: when it is full
 * the event goes out at once, named from the listener; user space sweeps what nobody accepted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct accept_event);
} pending SEC(".maps");

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

static __always_inline void take_toa(struct accept_event *ev, const struct toa_found *t, __u8 source)
{
	ev->toa_kind = t->kind;
	ev->toa_len = t->len;
	ev->toa_source = source;
	ev->flags |= ACCEPT_F_TOA;
	if (t->status == TOA_CONFLICT)
		ev->flags |= ACCEPT_F_CONFLICT;
	ev->client.family = t->family;
	ev->client.port = t->port;
	__builtin_memcpy(ev->client.addr, t->addr, 16);
}

/* listen(): remember who listens on the port (we are in the process's context here), and, with
 * --save-syn, ask the kernel to keep each SYN so its options can be read once established. */
static __always_inline int on_listen(struct bpf_sock_ops *skops)
{
	struct accept_listener_key key = { .netns = bpf_get_netns_cookie(skops), .port = skops->local_port };
	struct accept_listener who = {};

	if (listener_names) {
		who.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(who.comm, sizeof(who.comm));
		bpf_map_update_elem(&listeners, &key, &who, BPF_ANY);
	}
	if (save_syn)
		save_syn_on_listen(skops, listener_names);
	return 1;
}

static __always_inline void count_toa(struct accept_counters *c, struct accept_event *ev)
{
	if (ev->flags & ACCEPT_F_TOA) {
		c->toa_seen++;
		if (ev->flags & ACCEPT_F_UNTRUSTED)
			c->toa_untrusted++;
		if (ev->flags & ACCEPT_F_CONFLICT)
			c->toa_conflict++;
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

/* A closed window that saw repeats: its final count (the first connection was reported at once). */
static __always_inline void emit_summary(struct accept_counters *c, struct accept_event *done)
{
	if (done->count < 2)
		return;
	done->flags |= ACCEPT_F_SUMMARY;
	emit(c, done);
}

static __always_inline void merge_key(const struct accept_event *ev, struct accept_key *key)
{
	key->netns = ev->netns;
	key->family = ev->local.family;
	key->lport = ev->local.port;
	__builtin_memcpy(key->local, ev->local.addr, 16);
	if (ev->flags & ACCEPT_F_CLIENT) {
		key->client_family = ev->client.family;
		__builtin_memcpy(key->client, ev->client.addr, 16);
	} else {
		__builtin_memcpy(key->peer, ev->peer.addr, 16);
	}
}

/* Count a repeat into the open window of its key, or report it at once and open a window. An
 * expired window is taken out with delete-then-emit, so the kernel and user space's sweeper never
 * both report it. */
static __always_inline void merge_or_emit(struct accept_counters *c, struct accept_event *ev)
{
	struct accept_key key = {};
	struct accept_event *cur;
	long rc;

	if (merge_window_ns == 0) {
		emit(c, ev);
		return;
	}
	merge_key(ev, &key);
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
				emit_summary(c, &done);
		}
	}
	rc = bpf_map_update_elem(&merge, &key, ev, BPF_NOEXIST);
	if (rc == -EEXIST_) {
		/* another CPU opened this window a moment ago */
		cur = bpf_map_lookup_elem(&merge, &key);
		if (cur) {
			__sync_fetch_and_add(&cur->count, 1);
			__sync_fetch_and_add(&cur->kernel_ns, ev->kernel_ns);
			c->merged++;
			return;
		}
	} else if (rc) {
		c->merge_full++; /* -E2BIG: the map is full; -ENOMEM: no memory for an element */
	}
	emit(c, ev);
}

/* toa.ko keeps the option by value in sk_user_data; read it as a raw value (the verifier would
 * type it as a pointer). */
static __always_inline int toa_from_sk_user_data(struct tcp_sock *tp, struct toa_found *toa)
{
	__u64 ud = 0;

	bpf_probe_read_kernel(&ud, sizeof(ud), &tp->inet_conn.icsk_inet.sk.sk_user_data);
	return toa_from_toako(ud, toa);
}

#ifndef ACCEPT_NO_KERN_CTX
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
#endif

/* The TTL (IPv4) or hop limit (IPv6) of an IP header that starts at `ip` in kernel memory. */
static __always_inline __u8 ttl_at(const unsigned char *ip)
{
	__u8 first = 0, ttl = 0;

	if (bpf_probe_read_kernel(&first, 1, ip))
		return 0;
	if (first >> 4 == 4)
		bpf_probe_read_kernel(&ttl, 1, ip + 8);
	else if (first >> 4 == 6)
		bpf_probe_read_kernel(&ttl, 1, ip + 7);
	return ttl;
}

#ifdef ACCEPT_NO_KERN_CTX
/* Before 6.2 (no bpf_cast_to_kern_ctx): the ACK's IP header sits in the skb right before the TCP
 * header sock_ops hands us. Read it there when it has the plain size (IPv4 without options, IPv6
 * without extension headers); else the TTL stays unknown (0). */
static __always_inline __u8 ttl_before_tcp(struct bpf_sock_ops *skops, __u8 family)
{
	unsigned char *tcp = (unsigned char *)(long)skops->skb_data;
	__u8 b[8] = {};

	if (family == 4) { /* also IPv4 on a dual-stack listener */
		if (bpf_probe_read_kernel(b, 1, tcp - 20) || b[0] != 0x45)
			return 0;
		return ttl_at(tcp - 20);
	}
	if (bpf_probe_read_kernel(b, 8, tcp - 40) || b[0] >> 4 != 6 || b[6] != 6 /* IPPROTO_TCP */)
		return 0;
	return b[7];
}
#endif

/* How far the client's handshake came: the saved SYN's IP header with --save-syn (its TTL is the
 * SYN's own), else the handshake-completing ACK's, which took the same path: sock_ops hands us
 * that skb from its TCP header on, so its IP header is reached through the kernel's context. */
static __always_inline __u8 handshake_ttl(struct bpf_sock_ops *skops, __u8 family)
{
#ifndef ACCEPT_NO_KERN_CTX
	struct bpf_sock_ops_kern *k;
	struct sk_buff *skb;
#endif

	if (save_syn) {
		__u8 syn[64] = {};

		if (bpf_getsockopt(skops, TOA_SOL_TCP, TOA_TCP_BPF_SYN_IP, syn, 60) >= 20) {
			if (syn[0] >> 4 == 4)
				return syn[8];
			if (syn[0] >> 4 == 6)
				return syn[7];
		}
	}
#ifdef ACCEPT_NO_KERN_CTX
	return ttl_before_tcp(skops, family);
#else
	k = bpf_cast_to_kern_ctx(skops);
	skb = k->skb;
	if (!skb)
		return 0;
	return ttl_at(BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, network_header));
#endif
}

/* The cgroup of the socket: its creator's, inherited by every child of a listener. */
static __always_inline __u64 socket_cgroup(struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline int on_passive_established(struct bpf_sock_ops *skops)
{
	__u64 start = bpf_ktime_get_ns();
	struct accept_counters *c = tcplens_counters(&counters);
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp = bsk ? bpf_skc_to_tcp_sock(bsk) : 0;
	struct accept_event ev = {};
	struct toa_found toa = {}, ko = {};
	int from;

	if (!c)
		return 1;
	sockops_endpoints(skops, &ev.local, &ev.peer);
	if ((filter_family && filter_family != ev.local.family) || !port_wanted(ev.local.port)) {
		c->filtered++;
		return 1;
	}
	c->connections++;
	ev.first_ns = ev.last_ns = start;
	ev.count = 1;
	ev.netns = bpf_get_netns_cookie(skops);
	ev.ttl = handshake_ttl(skops, ev.local.family);
	if (tp) {
		ev.cgroup_id = socket_cgroup((struct sock *)tp);
		ev.netns_ino = netns_ino_of((struct sock *)tp);
	}

	from = toa_from_handshake(skops, &toa, save_syn);
	if (from != TOA_FROM_NONE)
		take_toa(&ev, &toa, from == TOA_FROM_ACK ? ACCEPT_SRC_ACK : ACCEPT_SRC_SYN);
	else if (read_toako && tp && toa_from_sk_user_data(tp, &ko) == TOA_FOUND)
		take_toa(&ev, &ko, ACCEPT_SRC_TOAKO);
	else if (toa.status == TOA_MALFORMED)
		ev.flags |= ACCEPT_F_MALFORMED;
	if (ev.flags & ACCEPT_F_TOA) {
		if (!peer_is_trusted(&ev.peer))
			ev.flags |= ACCEPT_F_UNTRUSTED;
		else if (!(ev.flags & ACCEPT_F_CONFLICT) || conflict_take_first)
			ev.flags |= ACCEPT_F_CLIENT;
	}
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
	if (acceptor_names) {
		__u64 cookie = bpf_get_socket_cookie(skops);

		if (bpf_map_update_elem(&pending, &cookie, &ev, BPF_NOEXIST) == 0)
			return 1;
	}
	merge_or_emit(c, &ev);
	return 1;
}

/* accept() handed `newsk` to the process running now: it names the connection's event. Taken out
 * with copy-then-delete, so this and user space's sweep of never-accepted connections never both
 * report it. */
static __always_inline int on_accepted(struct sock *newsk)
{
	struct accept_counters *c = tcplens_counters(&counters);
	struct accept_event *ev, copy;
	__u64 cookie;

	if (!newsk || !c)
		return 0;
	cookie = BPF_CORE_READ(newsk, __sk_common.skc_cookie.counter);
	ev = bpf_map_lookup_elem(&pending, &cookie);
	if (!ev)
		return 0;
	copy = *ev;
	if (bpf_map_delete_elem(&pending, &cookie))
		return 0;
	copy.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(copy.comm, sizeof(copy.comm));
	merge_or_emit(c, &copy);
	return 0;
}

/* Three ways to the accepting process; user space attaches the first this kernel allows.
 * inet_csk_accept(sk, flags, err, kern) up to 6.9, inet_csk_accept(sk, arg) since 6.10. */
SEC("fexit/inet_csk_accept")
int BPF_PROG(accept_fexit4, struct sock *sk, int flags, int *err, bool kern, struct sock *newsk)
{
	return on_accepted(newsk);
}

SEC("fexit/inet_csk_accept")
int BPF_PROG(accept_fexit2, struct sock *sk, void *arg, struct sock *newsk)
{
	return on_accepted(newsk);
}

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(accept_kretprobe, struct sock *newsk)
{
	return on_accepted(newsk);
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

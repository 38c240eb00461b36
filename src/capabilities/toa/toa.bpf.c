// SPDX-License-Identifier: GPL-2.0
/*
 * tcplens toa: what toa.ko does, without a kernel module, believing only trusted balancers.
 *
 * sock_ops sees each passively established connection: if its peer is a trusted balancer and
 * the handshake carried a TOA, the real client goes into the socket's storage.
 * cgroup/getpeername4/6 run inside accept() and getpeername(): a socket with storage gets the
 * real client as its peer; every other socket passes untouched after one storage lookup.
 */
#include "tcplens.h"
#include "toa-sockops.h"
#include "trust.h"
#include "sockops-endpoint.h"
#include "save-syn.h"
#include "toa.h" /* this directory's toa.h: storage value and counters */

char LICENSE[] SEC("license") = "GPL";

const volatile __u8 save_syn;
/* two TOAs in one header: 0 = believe none, 1 = the first (balancers known to write theirs first) */
const volatile __u8 conflict_take_first;

TCPLENS_COUNTERS(struct toa_counters);

/* Lives as long as a program or pin refers to it; `tcplens toa enable` hands the same map to
 * each new set of programs, so connections accepted before a reconfiguration keep their client. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct toa_client);
} clients SEC(".maps");

#define COUNT(field) TCPLENS_COUNT(struct toa_counters, field)

/* Zero trusted ranges would make trust.h believe everyone; toa never does (user space refuses
 * it too, this is the second lock on the same door). */
static __always_inline int from_trusted_balancer(struct bpf_sock_ops *skops)
{
	struct tcplens_endpoint peer = {};

	if (trusted_lb_count == 0)
		return 0;
	sockops_endpoints(skops, 0, &peer);
	return peer_is_trusted(&peer);
}

/* listen(): with --save-syn, keep each SYN this listener receives, so a TOA written only on the
 * SYN is found (save-syn.h: undone by `tcplens toa disable`). */
static __always_inline int on_listen(struct bpf_sock_ops *skops)
{
	if (save_syn)
		save_syn_on_listen(skops, 0);
	return 1;
}

static __always_inline int on_passive_established(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct toa_found toa = {};
	struct toa_client val = {}, *c;

	COUNT(connections);
	if (!sk)
		return 1;
	if (toa_from_handshake(skops, &toa, save_syn) == TOA_FROM_NONE) {
		if (toa.status == TOA_MALFORMED)
			COUNT(malformed);
		else
			COUNT(no_toa);
		goto forget;
	}
	if (!from_trusted_balancer(skops)) {
		COUNT(untrusted);
		goto forget;
	}
	if (toa.status == TOA_CONFLICT) {
		COUNT(conflict);
		if (!conflict_take_first)
			goto forget;
	}
	if (toa.family == 6 && skops->family != AF_INET6) {
		COUNT(unrepresentable);
		goto forget;
	}
	val.family = toa.family;
	val.port = toa.port;
	__builtin_memcpy(val.addr, toa.addr, 16);
	c = bpf_sk_storage_get(&clients, sk, &val, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		COUNT(store_failed);
		return 1;
	}
	/* Storage that already existed (see `forget`) still gets this configuration's answer. */
	c->family = val.family;
	c->port = val.port;
	__builtin_memcpy(c->addr, val.addr, 16);
	COUNT(stored);
	return 1;
forget:
	/* While a replacement on another cgroup is under way, the old program may run first on
	 * this socket and store what this configuration does not believe: drop it. */
	bpf_sk_storage_delete(&clients, sk);
	return 1;
}

SEC("sockops")
int toa_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		return on_listen(skops);
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		return on_passive_established(skops);
	}
	return 1;
}

/* The real client of this socket, or NULL (almost every call: no storage, nothing to do). */
static __always_inline struct toa_client *client_of(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	if (!sk)
		return 0;
	return bpf_sk_storage_get(&clients, sk, 0, 0);
}

/* One counters lookup for both fields: this runs inside every rewritten accept()/getpeername(). */
static __always_inline void note_rewrite(struct toa_client *c)
{
	struct toa_counters *n = tcplens_counters(&counters);

	if (!n)
		return;
	n->answers++;
	if (!c->rewritten) {
		/* two threads racing here may both count: a rare over-count beats an atomic per call */
		c->rewritten = 1;
		n->rewritten++;
	}
}

SEC("cgroup/getpeername4")
int toa_getpeername4(struct bpf_sock_addr *ctx)
{
	struct toa_client *c = client_of(ctx);

	if (!c || c->family != 4)
		return 1;
	ctx->user_ip4 = *(__u32 *)c->addr;
	ctx->user_port = bpf_htons(c->port);
	note_rewrite(c);
	return 1;
}

/* IPv4 clients of an IPv6 socket appear v4-mapped, as the kernel shows IPv4 peers there. */
SEC("cgroup/getpeername6")
int toa_getpeername6(struct bpf_sock_addr *ctx)
{
	struct toa_client *c = client_of(ctx);
	__u32 *a;

	if (!c)
		return 1;
	a = (__u32 *)c->addr;
	if (c->family == 4) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = a[0];
	} else if (c->family == 6) {
		ctx->user_ip6[0] = a[0];
		ctx->user_ip6[1] = a[1];
		ctx->user_ip6[2] = a[2];
		ctx->user_ip6[3] = a[3];
	} else {
		return 1;
	}
	ctx->user_port = bpf_htons(c->port);
	note_rewrite(c);
	return 1;
}

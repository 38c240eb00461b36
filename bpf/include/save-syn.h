/*
 * TCP_SAVE_SYN on listeners, set by us and undone by us. A TOA written only on the SYN can be
 * read at PASSIVE_ESTABLISHED only if the listener kept the SYN; but the flag stays on the
 * listener after our program is gone, and every child then holds a copy of its SYN for its
 * lifetime. So we set it only where it was off, remember each listener we changed (by socket
 * cookie, with a process and network namespace to find it again), and the iterator below turns
 * it off again on those listeners when tcplens is done with them.
 */
#ifndef TCPLENS_SAVE_SYN_H
#define TCPLENS_SAVE_SYN_H

#include "tcplens.h"

#define SAVE_SYN_SOL_TCP 6
#define SAVE_SYN_TCP_SAVE_SYN 27
#define SAVE_SYN_TCP_LISTEN 10

struct save_syn_listener {
	__u32 pid;       /* the process that called listen(), 0 if unknown */
	__u32 netns_ino; /* its network namespace (the inode of /proc/PID/ns/net) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* socket cookie */
	__type(value, struct save_syn_listener);
} syn_saved SEC(".maps");

static __always_inline __u32 netns_ino_of(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* At BPF_SOCK_OPS_TCP_LISTEN_CB (process context): keep SYNs, unless the listener already does.
 * The pid is only a hint for finding the namespace again (user space scans /proc without it):
 * pass with_pid = 0 where sock_ops may not call bpf_get_current_pid_tgid (6.12 and older; the
 * verifier skips the call when with_pid is a rodata 0). */
static __always_inline void save_syn_on_listen(struct bpf_sock_ops *skops, __u8 with_pid)
{
	struct save_syn_listener who = { .pid = with_pid ? bpf_get_current_pid_tgid() >> 32 : 0 };
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp = bsk ? bpf_skc_to_tcp_sock(bsk) : 0;
	__u64 cookie = bpf_get_socket_cookie(skops);
	int on = 0, one = 1;

	if (!tp)
		return;
	if (bpf_getsockopt(skops, SAVE_SYN_SOL_TCP, SAVE_SYN_TCP_SAVE_SYN, &on, sizeof(on)) == 0 && on)
		return; /* the application's own setting: not ours to undo */
	who.netns_ino = netns_ino_of((struct sock *)tp);
	/* Remember first: a listener we cannot find again must not be changed. */
	if (bpf_map_update_elem(&syn_saved, &cookie, &who, BPF_ANY))
		return;
	if (bpf_setsockopt(skops, SAVE_SYN_SOL_TCP, SAVE_SYN_TCP_SAVE_SYN, &one, sizeof(one)))
		bpf_map_delete_elem(&syn_saved, &cookie);
}

/* Run over the TCP sockets of one network namespace: turn TCP_SAVE_SYN off where we turned it on. */
SEC("iter/tcp")
int save_syn_undo(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	__u64 cookie;
	int off = 0;

	if (!skc || skc->skc_state != SAVE_SYN_TCP_LISTEN)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	cookie = bpf_get_socket_cookie(tp);
	if (!bpf_map_lookup_elem(&syn_saved, &cookie))
		return 0;
	if (bpf_setsockopt(tp, SAVE_SYN_SOL_TCP, SAVE_SYN_TCP_SAVE_SYN, &off, sizeof(off)) == 0)
		bpf_map_delete_elem(&syn_saved, &cookie);
	return 0;
}

#endif

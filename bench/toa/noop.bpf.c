// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark reference: programs on the same hooks as toa that do nothing. Their per-run cost
 * under the kernel's BPF statistics is the floor any program pays there (dispatch and the
 * statistics' own clock reads), so toa's own share is its cost minus this.
 */
#include "tcplens.h"

char LICENSE[] SEC("license") = "GPL";

SEC("sockops")
int noop_sockops(struct bpf_sock_ops *skops)
{
	return 1;
}

SEC("cgroup/getpeername6")
int noop_getpeername6(struct bpf_sock_addr *ctx)
{
	return 1;
}

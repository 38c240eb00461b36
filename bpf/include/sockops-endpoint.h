/*
 * The two ends of a connection as sock_ops sees it, for accept and toa alike. An IPv4 peer on an
 * IPv6 socket (v4-mapped, ::ffff:a.b.c.d) is reported as IPv4: that is the address on the wire.
 */
#ifndef TCPLENS_SOCKOPS_ENDPOINT_H
#define TCPLENS_SOCKOPS_ENDPOINT_H

#include "tcplens.h"

static __always_inline int sockops_v4mapped(struct bpf_sock_ops *skops)
{
	return skops->remote_ip6[0] == 0 && skops->remote_ip6[1] == 0 && skops->remote_ip6[2] == bpf_htonl(0xffff);
}

/* Fill local and/or peer (either may be NULL). */
static __always_inline void sockops_endpoints(struct bpf_sock_ops *skops, struct tcplens_endpoint *local,
					      struct tcplens_endpoint *peer)
{
	if (skops->family == AF_INET6 && !sockops_v4mapped(skops)) {
		if (local) {
			__u32 *l = (__u32 *)local->addr;

			local->family = 6;
			local->port = skops->local_port;
			l[0] = skops->local_ip6[0];
			l[1] = skops->local_ip6[1];
			l[2] = skops->local_ip6[2];
			l[3] = skops->local_ip6[3];
		}
		if (peer) {
			__u32 *r = (__u32 *)peer->addr;

			peer->family = 6;
			peer->port = bpf_ntohl(skops->remote_port) & 0xffff;
			r[0] = skops->remote_ip6[0];
			r[1] = skops->remote_ip6[1];
			r[2] = skops->remote_ip6[2];
			r[3] = skops->remote_ip6[3];
		}
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
		if (local) {
			local->family = 4;
			local->port = skops->local_port;
			*(__u32 *)local->addr = l;
		}
		if (peer) {
			peer->family = 4;
			peer->port = bpf_ntohl(skops->remote_port) & 0xffff;
			*(__u32 *)peer->addr = r;
		}
	}
}

#endif

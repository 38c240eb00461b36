/*
 * Trusted balancers: a TOA is believed only when the connection's peer is one of these ranges
 * (any client can write any option it likes). User space fills net/mask as four big-endian
 * words each; count 0 means "trust every peer" and tcplens says so at start.
 */
#ifndef TCPLENS_TRUST_H
#define TCPLENS_TRUST_H

#include "tcplens.h"

#define TRUST_MAX 16

struct trusted_range {
	__u32 net[4];
	__u32 mask[4];
	__u8 family;
	__u8 _pad[3];
};

const volatile struct trusted_range trusted_lbs[TRUST_MAX];
const volatile __u32 trusted_lb_count = 0;

static __always_inline int peer_is_trusted(const struct tcplens_endpoint *peer)
{
	const __u32 *a = (const __u32 *)peer->addr;
	__u32 i;

	if (trusted_lb_count == 0)
		return 1;
	for (i = 0; i < TRUST_MAX; i++) {
		if (i >= trusted_lb_count)
			break;
		if (trusted_lbs[i].family != peer->family)
			continue;
		if ((a[0] & trusted_lbs[i].mask[0]) == trusted_lbs[i].net[0] &&
		    (a[1] & trusted_lbs[i].mask[1]) == trusted_lbs[i].net[1] &&
		    (a[2] & trusted_lbs[i].mask[2]) == trusted_lbs[i].net[2] &&
		    (a[3] & trusted_lbs[i].mask[3]) == trusted_lbs[i].net[3])
			return 1;
	}
	return 0;
}

#endif

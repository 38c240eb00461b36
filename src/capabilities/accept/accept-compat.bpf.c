// SPDX-License-Identifier: GPL-2.0
/* accept for kernels before 6.2, which lack the bpf_cast_to_kern_ctx kfunc (libbpf refuses the
 * whole object when one kfunc is missing): the same programs, with the handshake TTL taken only
 * from a saved SYN. accept.ts picks this object when the kernel's BTF has no such function. */
#define ACCEPT_NO_KERN_CTX
#include "accept.bpf.c"

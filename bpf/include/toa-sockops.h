/*
 * Finding the TOA of a passively established connection from sock_ops, shared by accept and
 * toa: the handshake-completing ACK first (skb_data starts at its TCP header), then the saved
 * SYN (there only if TCP_SAVE_SYN was set on the listener when the SYN came, see save-syn.h).
 */
#ifndef TCPLENS_TOA_SOCKOPS_H
#define TCPLENS_TOA_SOCKOPS_H

#include "toa-option.h"

#define TOA_SOL_TCP 6
#define TOA_TCP_BPF_SYN 1005
#define TOA_TCP_BPF_SYN_IP 1006

#define TOA_FROM_NONE 0
#define TOA_FROM_ACK 1
#define TOA_FROM_SYN 2

/* At BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB. Returns TOA_FROM_ACK/SYN with *toa filled (status
 * TOA_FOUND, or TOA_CONFLICT with the first of several TOAs), or TOA_FROM_NONE with toa->status
 * TOA_MALFORMED if either source had broken options. */
static __always_inline int toa_from_handshake(struct bpf_sock_ops *skops, struct toa_found *toa, int use_syn)
{
	struct toa_opts opts = {};
	__u8 syn[64] = {};
	int malformed, st;

	toa_copy_opts(&opts, (void *)(long)skops->skb_data, (void *)(long)skops->skb_data_end);
	st = toa_parse(&opts, toa);
	if (st == TOA_FOUND || st == TOA_CONFLICT)
		return TOA_FROM_ACK;
	malformed = st == TOA_MALFORMED;
	if (use_syn && bpf_getsockopt(skops, TOA_SOL_TCP, TOA_TCP_BPF_SYN, syn, 60) >= 0) {
		toa_copy_hdr(&opts, syn, 60);
		st = toa_parse(&opts, toa);
		if (st == TOA_FOUND || st == TOA_CONFLICT)
			return TOA_FROM_SYN;
		malformed |= st == TOA_MALFORMED;
	}
	toa->status = malformed ? TOA_MALFORMED : TOA_NONE;
	return TOA_FROM_NONE;
}

#endif

/*
 * toa: the socket-storage value and the counters. The ONLY definition of these layouts;
 * TypeScript reads them from BTF. (The TOA option parser is bpf/include/toa-option.h.)
 */
#ifndef TCPLENS_TOA_CAP_H
#define TCPLENS_TOA_CAP_H

#include "tcplens.h"

/* The real client of one accepted connection, kept in its socket storage. */
struct toa_client {
	__u8 addr[16];    /* network order, IPv4 in the first 4 bytes */
	__u16 port;       /* host order */
	__u8 family;      /* 4 or 6 */
	__u8 rewritten;   /* set at the first rewrite, so `rewritten` counts connections */
};

struct toa_counters {
	__u64 lost;            /* the shared counters layout starts with it; toa has no ring, so 0 */
	__u64 connections;     /* passively established connections seen */
	__u64 stored;          /* a trusted TOA kept for the connection */
	__u64 rewritten;       /* connections whose accept()/getpeername() got the real client */
	__u64 answers;         /* accept()/getpeername() calls answered with a real client */
	__u64 untrusted;       /* a TOA from a peer outside --trusted-lb: ignored */
	__u64 conflict;        /* two or more TOAs in one header: none used (unless --toa-conflict first) */
	__u64 malformed;       /* a TOA kind with a wrong length, or cut-short options */
	__u64 no_toa;          /* no TOA on the handshake ACK or the saved SYN */
	__u64 unrepresentable; /* an IPv6 client on an IPv4-only socket: left as the balancer */
	__u64 store_failed;    /* socket storage could not be allocated: left as the balancer */
};

#endif

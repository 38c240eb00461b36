/*
 * TOA (TCP Option Address) parsing, shared by every program that needs the real client.
 * bpf_load_hdr_opt cannot find kinds 253/254 without their 2-byte "magic" (the client port,
 * unknown here), so we walk the raw option bytes the way the kernel's tcp_parse_options does:
 * EOL ends, NOP is one byte, a length < 2 ("silly") or running past the end (partial) stops.
 *
 * Dialects are a table set from user space before load: (kind, len) -> address family.
 * len 8 = port(2) + IPv4(4); len 20 = port(2) + IPv6(16).
 *
 * Two TOA-kind options in one header are a conflict, not a choice: a client can write its own
 * option on its SYN and ACK, and a balancer that appends its TOA after the client's options would
 * otherwise forward the forgery first. The parser reports TOA_CONFLICT with the FIRST option
 * filled in, so a caller configured to trust the first one (balancers that write theirs first,
 * as LVS and DPVS do, or strip the client's) can still use it, and count the conflict.
 */
#ifndef TCPLENS_TOA_OPTION_H
#define TCPLENS_TOA_OPTION_H

#include "tcplens.h"

#define TOA_MAX_DIALECTS 8
#define TCP_OPTS_MAX 40
/* Stack buffers that hold options are this big so masked indexes stay in bounds. */
#define TOA_BUF 64

struct toa_dialect {
	__u8 kind;
	__u8 len;    /* 8 or 20 */
	__u8 family; /* 4 or 6 */
	__u8 _pad;
};

enum toa_status {
	TOA_NONE = 0,      /* no TOA-kind option present */
	TOA_FOUND = 1,     /* a well-formed option of a configured dialect */
	TOA_MALFORMED = 2, /* a TOA kind with a wrong length, or options cut short / silly */
	TOA_CONFLICT = 3,  /* more than one TOA-kind option: *out holds the first */
};

struct toa_found {
	__u8 status;
	__u8 kind;
	__u8 len;
	__u8 family;
	__u16 port;  /* host order */
	__u8 start;  /* where the option begins among the option bytes */
	__u8 _pad;
	__u8 addr[16];
};

const volatile struct toa_dialect toa_dialects[TOA_MAX_DIALECTS] = {
	{ .kind = 254, .len = 8, .family = 4 },
	{ .kind = 253, .len = 20, .family = 6 },
	{ .kind = 254, .len = 20, .family = 6 },
};
const volatile __u32 toa_dialect_count = 3;

/* Option bytes gathered from a packet or a saved SYN. A struct, so the parser below can be a
 * global BPF function: the verifier checks it once, not once per call site and path. */
struct toa_opts {
	__u8 b[TOA_BUF];
	__u32 n;
};

/* Copy up to 40 option bytes that follow a TCP header at `th` (a packet pointer). Fewer than
 * doff says bytes are missing; the parser then sees a cut-short option. */
static __always_inline void toa_copy_opts(struct toa_opts *o, const void *th, const void *end)
{
	const struct tcphdr *tcp = th;
	const __u8 *p = (const __u8 *)(tcp + 1);
	__u32 n, j;

	o->n = 0;
	if ((const void *)(tcp + 1) > end)
		return;
	n = tcp->doff * 4;
	if (n <= sizeof(*tcp))
		return;
	n -= sizeof(*tcp);
	if (n > TCP_OPTS_MAX)
		n = TCP_OPTS_MAX;
	for (j = 0; j < TCP_OPTS_MAX; j++) {
		if (j >= n)
			break;
		if ((const void *)(p + j + 1) > end)
			break;
		o->b[j] = p[j];
	}
	o->n = j;
}

/* The options of a TCP header held in a stack buffer of >= 60 bytes (a saved SYN of `got` bytes). */
static __always_inline void toa_copy_hdr(struct toa_opts *o, const __u8 *hdr, __u32 got)
{
	__u32 n = (hdr[12] >> 4) * 4;

	o->n = 0;
	if (n > got)
		n = got;
	if (n <= 20)
		return;
	n -= 20;
	if (n > TCP_OPTS_MAX)
		n = TCP_OPTS_MAX;
	__builtin_memcpy(o->b, hdr + 20, TCP_OPTS_MAX); /* hdr holds >= 60 bytes; n says how many count */
	o->n = n;
}

/* Hide a value from clang so it keeps the mask that proves bounds to the verifier. */
#define TOA_IDX(x) ({ __u32 __v = (x); asm volatile("" : "+r"(__v)); __v & (TOA_BUF - 1); })

/* Comparisons as arithmetic (a 0/1 value), for the walk below: a branch on the flag teaches the
 * verifier nothing about a and b, so their ranges stay the same on every path and it can merge
 * them. Both work for values below 2^31 (option positions and lengths are). */
static __always_inline __u32 toa_same(__u32 a, __u32 b)
{
	__u32 x = a ^ b;

	asm volatile("" : "+r"(x));
	return ((x - 1) >> 31) & 1; /* x is 0 exactly when a == b */
}

static __always_inline __u32 toa_less(__u32 a, __u32 b)
{
	__u32 x = a - b;

	asm volatile("" : "+r"(x));
	return x >> 31;
}

/*
 * Walk the option bytes from byte `start` to the first option of a TOA dialect; fill *out with it
 * and return TOA_FOUND, or TOA_NONE / TOA_MALFORMED (out->len then 0). A global function, so the
 * verifier checks it once whatever its callers know.
 *
 * The verifier's work must stay small for every dialect table (it walks each loop iteration on
 * every path that reaches it, and only merges paths whose registers it cannot tell apart). So the
 * loop goes option by option (at most 40: each takes >= 1 byte) and carries nothing the verifier
 * can split on: the position is masked at the top of each round, it and the option count are only
 * compared through toa_less/toa_same (so no path narrows them), the "wrong length" flag is
 * arithmetic and never branched on, and a match leaves the loop. What the match found is read
 * back from the option bytes after the loop, not carried.
 */
__noinline int toa_scan(const struct toa_opts *o, __u32 start, struct toa_found *out)
{
	__u32 i, j, n, pos = start, at, size, wrong_len = 0, family = 0;

	if (!o || !out)
		return TOA_NONE;
	out->status = TOA_NONE;
	out->len = 0;
	n = o->n;
	if (n > TCP_OPTS_MAX)
		n = TCP_OPTS_MAX;
	for (i = 0; i < TCP_OPTS_MAX; i++) {
		__u32 d, kind;

		if (!toa_less(pos, n))
			break;
		pos = TOA_IDX(pos);
		kind = o->b[pos];
		if (kind == 0) /* EOL */
			break;
		if (kind == 1) { /* NOP */
			pos++;
			continue;
		}
		if (!toa_less(pos + 1, n)) { /* no room for the length byte */
			out->status = TOA_MALFORMED;
			return TOA_MALFORMED;
		}
		size = o->b[TOA_IDX(pos + 1)];
		if (toa_less(size, 2) | toa_less(n, pos + size)) { /* silly or partial: the kernel stops here too */
			out->status = TOA_MALFORMED;
			return TOA_MALFORMED;
		}
		/* every slot is looked at, unused ones masked off, so each table costs the same */
		for (d = 0; d < TOA_MAX_DIALECTS; d++) {
			__u32 same_kind = toa_same(kind, toa_dialects[d].kind) & toa_less(d, toa_dialect_count);

			if (same_kind & toa_same(size, toa_dialects[d].len)) {
				family = toa_dialects[d].family;
				goto found;
			}
			wrong_len |= same_kind; /* a TOA kind with another length: RFC 6994 experiments */
		}
		pos += size;
	}
	out->status = TOA_NONE + wrong_len * (TOA_MALFORMED - TOA_NONE);
	return out->status;
found:
	at = TOA_IDX(pos);
	size = o->b[TOA_IDX(at + 1)];
	out->status = TOA_FOUND;
	out->kind = o->b[at];
	out->len = size;
	out->family = family;
	out->port = ((__u16)o->b[TOA_IDX(at + 2)] << 8) | o->b[TOA_IDX(at + 3)];
	out->start = at;
	for (j = 0; j < 16; j++)
		out->addr[j] = j + 4 < size ? o->b[TOA_IDX(at + 4 + j)] : 0;
	return TOA_FOUND;
}

/*
 * The TOA of a header: the first option of a TOA dialect, and a second one makes it a conflict
 * (TOA_CONFLICT, *out still holding the first). A TOA kind with another length (RFC 6994
 * experiments share kind 254) is no TOA and no conflict; it makes the header malformed only when
 * no real TOA is there. Options cut short after the TOA leave it standing, as in the kernel.
 */
static __always_inline int toa_parse(const struct toa_opts *o, struct toa_found *out)
{
	struct toa_found second = {};

	if (toa_scan(o, 0, out) != TOA_FOUND)
		return out->status;
	if (toa_scan(o, (out->start + out->len) & (TOA_BUF - 1), &second) == TOA_FOUND)
		out->status = TOA_CONFLICT;
	return out->status;
}

/*
 * toa.ko keeps the option BY VALUE in sk->sk_user_data: opcode, opsize, port, IPv4 (the 8 bytes
 * of a little-endian u64). A real kernel pointer there (0xffff...) is someone else's data.
 */
static __always_inline int toa_from_toako(__u64 ud, struct toa_found *out)
{
	__u8 b[8];

	__builtin_memcpy(b, &ud, 8);
	out->status = TOA_NONE;
	if (b[0] != 254 || b[1] != 8 || (ud >> 48) == 0xffff)
		return TOA_NONE;
	out->status = TOA_FOUND;
	out->kind = 254;
	out->len = 8;
	out->family = 4;
	out->port = ((__u16)b[2] << 8) | b[3];
	__builtin_memset(out->addr, 0, 16);
	__builtin_memcpy(out->addr, &b[4], 4);
	return TOA_FOUND;
}

#endif

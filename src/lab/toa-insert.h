/* tcplens lab: what the TOA inserter shares with user space. Data only. */
#ifndef TCPLENS_LAB_TOA_INSERT_H
#define TCPLENS_LAB_TOA_INSERT_H

/* Per-CPU counters, summed by `tcplens lab status` through BTF. */
struct toa_insert_counters {
	__u64 inserted_syn;
	__u64 inserted_ack;
	__u64 skipped_no_room;  /* 40 bytes of options would overflow: skipped, as LVS does */
	__u64 skipped_payload;  /* a handshake packet carrying data (the option would have to move it) */
	__u64 failed;           /* a helper refused (growing the packet, writing bytes) */
};

/* A client's connection as it arrives at the balancer, before NAT. */
struct toa_insert_conn_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* network order, as on the wire */
	__u16 dport;
	__u8 family; /* 4 or 6 */
	__u8 _pad[3];
};

/* The sequence number the handshake-completing ACK carries: the client's ISN + 1. */
struct toa_insert_conn {
	__u32 ack_seq; /* host order */
	__u32 _pad;
};

#endif

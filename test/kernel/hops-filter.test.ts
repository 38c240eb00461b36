// The hops socket filter on crafted packets through BPF_PROG_TEST_RUN. Under test_run a socket
// filter's data starts at the IP header (the 14 Ethernet bytes we prepend are pulled off), while
// on a live TCP socket it starts at the TCP header; the filter reads everything relative to the
// network header (BPF_HDR_START_NET), which is the IP header in both, so these runs exercise the
// very loads the live filter makes. Each test_run call gets a fresh socket (a fresh cookie); with
// repeat > 1 the same socket sees the packet again.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { readCounters } from '../../src/kernel/counters.js';
import { HOPS_OBJECT } from '../../src/capabilities/hops/hops.js';

const obj = BpfObject.open(HOPS_OBJECT);
obj.load();
after(() => obj.close());

const SYN_ACK = 0x12, RST = 0x04, ACK = 0x10, RST_ACK = 0x14;

function tcp(flags: number, payload = 0): Buffer {
  const h = Buffer.alloc(20 + payload);
  h.writeUInt16BE(80, 0);
  h.writeUInt16BE(40000, 2);
  h[12] = 5 << 4;
  h[13] = flags;
  return h;
}

function ipv4(ttl: number, l4: Buffer, optionWords = 0): Buffer {
  const ihl = 5 + optionWords;
  const h = Buffer.alloc(ihl * 4);
  h[0] = 0x40 | ihl;
  h.writeUInt16BE(h.length + l4.length, 2);
  h[8] = ttl;
  h[9] = 6;
  for (let i = 20; i < h.length; i++) h[i] = 1; // NOP options
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(h, 12);
  return Buffer.concat([h, l4]);
}

function ipv6(hopLimit: number, l4: Buffer, next = 6): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(l4.length, 4);
  h[6] = next;
  h[7] = hopLimit;
  h[23] = 1;
  h[39] = 2;
  return Buffer.concat([h, l4]);
}

function frame(ethertype: number, packet: Buffer): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(ethertype, 12);
  return Buffer.concat([eth, packet]);
}

const layout = obj.struct('hops_reply');

/** Every record in the map, then emptied, so each test sees only its own. */
function takeRecords(): { ttl: number; family: number; flags: number; later: number }[] {
  const map = obj.map('replies');
  return map.keys().map((k) => {
    const v = map.lookupAndDelete(k)!;
    return { ttl: v[layout.offset('ttl')], family: v[layout.offset('family')], flags: v[layout.offset('tcp_flags')], later: v.readUInt32LE(layout.offset('later')) };
  });
}

function run(packet: Buffer, repeat = 1): void {
  const r = obj.testRun('first_reply', packet, repeat);
  // The kernel pulls the Ethernet header off; the rest is what the filter must keep, whole.
  assert.equal(r.retval, packet.length - 14, 'the filter returns the full length (never drops or truncates)');
}

test('IPv4 and IPv6 replies: the TTL / hop limit, family and flags of the packet', () => {
  run(frame(0x0800, ipv4(57, tcp(SYN_ACK))));
  assert.deepEqual(takeRecords(), [{ ttl: 57, family: 4, flags: SYN_ACK, later: 0 }]);
  run(frame(0x0800, ipv4(120, tcp(RST_ACK), 3)));
  assert.deepEqual(takeRecords(), [{ ttl: 120, family: 4, flags: RST_ACK, later: 0 }], 'IP options: the TCP header is found by IHL');
  run(frame(0x0800, ipv4(1, tcp(RST))));
  assert.deepEqual(takeRecords(), [{ ttl: 1, family: 4, flags: RST, later: 0 }]);
  run(frame(0x86dd, ipv6(250, tcp(SYN_ACK))));
  assert.deepEqual(takeRecords(), [{ ttl: 250, family: 6, flags: SYN_ACK, later: 0 }]);
  run(frame(0x86dd, ipv6(128, tcp(RST))));
  assert.deepEqual(takeRecords(), [{ ttl: 128, family: 6, flags: RST, later: 0 }]);
});

test('only the first reply of a socket is kept; what follows is counted', () => {
  const before = readCounters(obj, 'hops_counters');
  run(frame(0x0800, ipv4(60, tcp(SYN_ACK))), 4);
  assert.deepEqual(takeRecords(), [{ ttl: 60, family: 4, flags: SYN_ACK, later: 3 }]);
  const c = readCounters(obj, 'hops_counters');
  assert.equal(c.replies - before.replies, 1);
  assert.equal(c.later - before.later, 3);
});

test('packets that are not a reply, or not readable, are passed whole and not recorded', () => {
  const before = readCounters(obj, 'hops_counters');
  const cases: Buffer[] = [
    frame(0x0800, ipv4(64, tcp(ACK, 1400))), // data before any reply: not an answer to our SYN
    frame(0x0800, ipv4(64, tcp(0x02))), // a bare SYN
    frame(0x86dd, ipv6(64, tcp(SYN_ACK), 0)), // behind a hop-by-hop header: not walked
    frame(0x0800, ipv4(64, Buffer.alloc(6))), // TCP header cut short
    frame(0x0800, Buffer.concat([Buffer.from([0x4f]), Buffer.alloc(39)])), // IHL 15: TCP flags past the end
    frame(0x0806, Buffer.alloc(28, 0x11)), // ARP: version nibble 1
    frame(0x0800, Buffer.from([0x43, ...Buffer.alloc(40)])), // IHL 3: invalid
  ];
  for (const p of cases) run(p);
  assert.deepEqual(takeRecords(), []);
  const c = readCounters(obj, 'hops_counters');
  assert.equal(c.packets - before.packets, cases.length);
  assert.equal(c.other - before.other, 2);
  assert.equal(c.not_ip - before.not_ip, 5);
  assert.equal(c.replies, before.replies);
});

// test_run takes 34 bytes up to about a page (headroom and skb_shared_info take the rest).
test('large packets are kept whole too', () => {
  for (const size of [0, 1, 536, 1460, 3000]) {
    run(frame(0x0800, ipv4(64, tcp(SYN_ACK, size))));
    run(frame(0x86dd, ipv6(64, tcp(ACK, size))));
  }
  assert.equal(takeRecords().length, 5);
});

// The lab is a real FULLNAT balancer: real namespaces, nftables NAT, our TC program, real TCP.
// What the servers receive is checked from a capture in their namespace, with checksums
// recomputed from the bytes, and from the kernel's own TcpInCsumErrors counter.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { koffi } from '../../src/kernel/libbpf.js';
import { labDown, labUp, leftovers } from '../../src/lab/lab.js';
import { labStatus } from '../../src/lab/status.js';
import { startCapture, findToa, type CapturedSegment } from '../../src/lab/capture.js';
import { CLIENT_SCRIPT } from '../../src/lab/demo.js';
import { withNetns } from '../../src/lab/netns.js';
import { parseAddr } from '../../src/net/addr.js';
import type { LabState } from '../../src/lab/state.js';

const name = `k${process.pid}`;
let lab: LabState;
const ns = (node: string) => lab.topology.nodes.find((n) => n.name === node)!.netns;

interface Answer { client: string; server: string; peer: string; local: string }

function request(client: string, vip: string, count = 1): Answer[] {
  const out = execFileSync('ip', ['netns', 'exec', ns(client), process.execPath, CLIENT_SCRIPT, vip, '80', String(count)], { encoding: 'utf8' });
  return out.trim().split('\n').map((l) => JSON.parse(l));
}

function split(endpoint: string): { addr: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(endpoint)!;
  return { addr: m[1], port: Number(m[2]) };
}

function csumErrors(netns: string): number {
  const out = execFileSync('ip', ['netns', 'exec', netns, 'nstat', '-az', 'TcpInCsumErrors'], { encoding: 'utf8' });
  return Number(/TcpInCsumErrors\s+(\d+)/.exec(out)?.[1] ?? NaN);
}

before(async () => {
  lab = await labUp({ name, clients: 3, servers: 3, hops: [0, 1, 2], ipv6: true, port: 80,
    toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 } });
});

after(async () => {
  await labDown(name);
  assert.deepEqual(leftovers(name), []);
});

/** The option kinds in order (NOPs and the end marker left out). */
function kinds(options: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < options.length && options[i] !== 0;) {
    if (options[i] === 1) { i++; continue; }
    out.push(options[i]);
    i += Math.max(options[i + 1] ?? 1, 1);
  }
  return out;
}

test('every client reaches a server whose socket sees the balancer; the SYN and handshake ACK carry the client in TOA, first, before the client\'s own options', async () => {
  const t = lab.topology;
  const capNodes = [...t.servers.map((s) => s.node), ...t.clients.map((c) => c.node)];
  const files = capNodes.map((n) => join(tmpdir(), `tcplens-${name}-${n}.pcap`));
  const caps = await Promise.all(capNodes.map((n, i) => startCapture(ns(n), 'eth0', files[i], 'tcp port 80')));
  const answers: { answer: Answer; client: (typeof t.clients)[number]; family: 4 | 6 }[] = [];
  const seen: CapturedSegment[][] = [];
  try {
    for (const c of t.clients) {
      for (const [vip, family] of [[t.vip4, 4], [t.vip6!, 6]] as const) {
        for (const answer of request(c.node, vip)) answers.push({ answer, client: c, family });
      }
    }
  } finally {
    seen.push(...await Promise.all(caps.map((cap) => cap.stop())));
    for (const f of files) rmSync(f, { force: true });
  }
  assert.equal(answers.length, 6);
  const sent = seen.slice(t.servers.length).flat();

  for (const { answer, client, family } of answers) {
    const own = split(answer.client);
    const peer = split(answer.peer);
    assert.equal(own.addr, family === 4 ? client.ip4 : client.ip6, 'the client used its own address');
    assert.equal(peer.addr, family === 4 ? t.lbAddr4 : t.lbAddr6, `${answer.server}'s socket saw the balancer, not ${own.addr}`);

    const k = t.servers.findIndex((s) => s.node === answer.server);
    const conn = seen[k].filter((s) => s.src === peer.addr && s.sport === peer.port && s.dport === 80);
    const syn = conn.filter((s) => s.flags === 0x02);
    const acks = conn.filter((s) => s.flags === 0x10 && s.payloadLen === 0);
    assert.equal(syn.length, 1, `one SYN from the balancer for ${answer.client}`);
    assert.ok(acks.length >= 1, 'a handshake ACK');
    const want = { kind: family === 4 ? 254 : 253, len: family === 4 ? 8 : 20, port: own.port, addr: own.addr };
    assert.deepEqual(findToa(syn[0].options), want, 'TOA on the SYN');
    assert.deepEqual(findToa(acks[0].options), want, 'TOA on the handshake-completing ACK');
    assert.ok(acks[0].seq === syn[0].seq + 1);

    // What the client itself sent: its options must follow the TOA unchanged, in order.
    const mine = sent.filter((s) => s.src === own.addr && s.sport === own.port);
    const clientSyn = mine.find((s) => s.flags === 0x02)!;
    const clientAck = mine.find((s) => s.flags === 0x10 && s.payloadLen === 0 && s.seq === clientSyn.seq + 1)!;
    assert.ok(clientSyn && clientAck, `the client's own SYN and ACK were captured for ${answer.client}`);
    assert.deepEqual(kinds(clientSyn.options).sort(), [2, 3, 4, 8], 'the client sends MSS, window scale, SACK permitted, timestamps');
    for (const [what, at, from] of [['SYN', syn[0], clientSyn], ['handshake ACK', acks[0], clientAck]] as const) {
      assert.deepEqual([at.options[0], at.options[1]], [want.kind, want.len], `the TOA is the first option of the ${what}`);
      assert.deepEqual([...at.options.subarray(want.len)], [...from.options], `the client's ${what} options follow the TOA, in order`);
    }
    const later = conn.filter((s) => s !== syn[0] && s !== acks[0]);
    assert.ok(later.length > 0 && later.every((s) => findToa(s.options) === null), 'no TOA after the handshake');
    // Every router and the balancer took one off the TTL: client i is hops[i] + 1 forwards away.
    assert.equal(syn[0].ttl, 64 - client.hops - 1, `${client.node} is ${client.hops} routers away`);
  }
  const all: CapturedSegment[] = seen.flat();
  assert.ok(all.length >= 6 * 8);
  assert.deepEqual(all.filter((s) => !s.tcpChecksumOk || !s.ipChecksumOk), [], 'every captured checksum is right');
  for (const s of t.servers) assert.equal(csumErrors(ns(s.node)), 0, `TcpInCsumErrors in ${s.node}`);

  const c = labStatus(name).toa.counters!;
  assert.equal(c.inserted_syn, 6);
  assert.equal(c.inserted_ack, 6);
  assert.equal(c.failed + c.skipped_no_room + c.skipped_payload, 0);
});

test('connections are spread over the servers round robin, per family', () => {
  const n = lab.topology.servers.length;
  for (const vip of [lab.topology.vip4, lab.topology.vip6!]) {
    const order = request('client2', vip, 3 * n).map((a) => Number(a.server.replace('server', '')));
    for (let i = 1; i < order.length; i++) assert.equal(order[i], (order[i - 1] % n) + 1, `cyclic order: ${order}`);
    for (let k = 1; k <= n; k++) assert.equal(order.filter((x) => x === k).length, 3);
  }
  const dnat = labStatus(name).dnat!;
  assert.equal(dnat.ipv4, 3 + 3 * n);
  assert.equal(dnat.ipv6, 3 + 3 * n);
});

// MSS, SACK permitted, timestamps, NOPs, window scale: 40 bytes, no room for a TOA.
const FULL_OPTIONS = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, ...Array(21).fill(1), 3, 3, 7];

/** A raw IPv4 SYN (TCP header only; the kernel adds the IP header) with the options given. */
function rawSyn(src: Uint8Array, dst: Uint8Array, sport: number, opts: number[]): Buffer {
  assert.equal(opts.length % 4, 0);
  const h = Buffer.alloc(20 + opts.length);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(80, 2);
  h.writeUInt32BE(12345, 4);
  h[12] = (h.length / 4) << 4;
  h[13] = 0x02;
  h.writeUInt16BE(64240, 14);
  Buffer.from(opts).copy(h, 20);
  let sum = 0;
  for (let i = 0; i < 4; i += 2) sum += ((src[i] << 8) | src[i + 1]) + ((dst[i] << 8) | dst[i + 1]);
  sum += 6 + h.length;
  for (let i = 0; i < h.length; i += 2) sum += (h[i] << 8) | h[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  h.writeUInt16BE(~sum & 0xffff, 16);
  return h;
}

/** Send a raw SYN from client1 to the IPv4 VIP; what the servers received of it. */
async function sendRawSyn(sport: number, opts: number[]): Promise<CapturedSegment[]> {
  const t = lab.topology;
  const libc = koffi.load('libc.so.6');
  const socket = libc.func('int socket(int, int, int)');
  const sendto = libc.func('intptr_t sendto(int, void *, size_t, int, void *, uint32_t)');
  const close = libc.func('int close(int)');
  const files = t.servers.map((s) => join(tmpdir(), `tcplens-${name}-raw-${s.node}.pcap`));
  const caps = await Promise.all(t.servers.map((s, i) => startCapture(ns(s.node), 'eth0', files[i], 'tcp[tcpflags] == tcp-syn')));
  const client = t.clients[0];
  const syn = rawSyn(parseAddr(client.ip4)!.bytes, parseAddr(t.vip4)!.bytes, sport, opts);
  withNetns(ns(client.node), () => {
    const fd = socket(2 /* AF_INET */, 3 /* SOCK_RAW */, 6 /* IPPROTO_TCP: the kernel adds the IP header */) as number;
    assert.ok(fd >= 0);
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(2, 0);
    Buffer.from(parseAddr(t.vip4)!.bytes.subarray(0, 4)).copy(sa, 4);
    assert.equal(Number(sendto(fd, syn, syn.length, 0, sa, 16)), syn.length);
    close(fd);
  });
  // Until a capture has written the SYN (tcpdump -U writes each packet as it reads it): a tcpdump
  // stopped before it was scheduled to read its ring loses what is still in it, as happened once
  // on a loaded machine with a fixed 300 ms wait. 24 bytes = the pcap file header alone.
  const size = (f: string) => { try { return statSync(f).size; } catch { return 0; } };
  for (const end = Date.now() + 3000; Date.now() < end && files.every((f) => size(f) <= 24);) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 100));
  const got = (await Promise.all(caps.map((c) => c.stop()))).flat();
  for (const f of files) rmSync(f, { force: true });
  return got.filter((s) => s.sport === sport);
}

test('a SYN with no room left for the option is forwarded untouched and counted as skipped', async () => {
  const before = labStatus(name).toa.counters!;
  const arrived = await sendRawSyn(40404, FULL_OPTIONS);
  assert.equal(arrived.length, 1, 'the SYN reached a server');
  assert.equal(arrived[0].options.length, 40);
  assert.equal(findToa(arrived[0].options), null);
  assert.ok(arrived[0].tcpChecksumOk);
  const after = labStatus(name).toa.counters!;
  assert.equal(after.skipped_no_room - before.skipped_no_room, 1);
  assert.equal(after.inserted_syn, before.inserted_syn);
});

test('a client that forges its own TOA on its SYN finds the balancer\'s TOA ahead of it', async () => {
  const t = lab.topology;
  // MSS, then a 254/8 naming 192.0.2.7:7777, then NOP NOP and window scale.
  const forged = [254, 8, 0x1e, 0x61, 192, 0, 2, 7];
  const opts = [2, 4, 0x05, 0xb4, ...forged, 1, 1, 3, 3, 7, 1, 1, 1];
  const arrived = await sendRawSyn(40405, opts);
  assert.equal(arrived.length, 1, 'the SYN reached a server');
  const o = arrived[0].options;
  assert.deepEqual(findToa(o), { kind: 254, len: 8, port: 40405, addr: t.clients[0].ip4 }, 'the first TOA is the balancer\'s');
  assert.deepEqual([...o.subarray(8)], opts, 'the forged option and the rest follow, unchanged');
  assert.ok(arrived[0].tcpChecksumOk && arrived[0].ipChecksumOk);
});

test('the state records the id of the TC program each filter runs (read back from bpf_tc_opts)', () => {
  assert.equal(lab.tc.length, lab.topology.clientFacing.length);
  for (const a of lab.tc) {
    assert.ok(a.progId > 0, `${a.dev} has a program id`);
    const info = JSON.parse(execFileSync('bpftool', ['prog', 'show', 'id', String(a.progId), '--json'], { encoding: 'utf8' }));
    assert.equal(info.name, 'toa_insert');
  }
});

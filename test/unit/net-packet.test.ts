import test from 'node:test';
import assert from 'node:assert/strict';
import { formatAddr } from '../../src/net/addr.js';
import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW } from '../../src/net/link-type.js';
import { decodeFrame, newTcpSegment, tcpOptionsWellFormed, type TcpSegment } from '../../src/net/packet.js';
import { buildFrame } from '../helpers/frames.js';

const T = { timeout: 5_000 };
const text = (s: TcpSegment) => Buffer.from(s.frame.subarray(s.payloadOff, s.payloadOff + s.payloadLen)).toString();

test('every field of an IPv4 segment inside QinQ and IPIP', T, () => {
  const s = newTcpSegment();
  const frame = buildFrame({ src: '10.1.2.3', dst: '10.4.5.6', sport: 1234, dport: 80, seq: 0xfffffff0, ack: 77, flags: 0x19, ttl: 33, window: 512,
    payload: 'hi', vlans: [300, 400], tunnel: { type: 'ipip', src: '192.168.9.1', dst: '192.168.9.2' }, ipOptions: [1, 1, 1, 0], tcpOptions: [2, 4, 5, 0xb4] });
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, frame, s), 'tcp');
  assert.deepEqual([s.vlan, s.vlanInner, s.tunnel, s.family, s.ttl, s.srcPort, s.dstPort, s.seq, s.ack, s.flags, s.window, s.payloadMissing, s.badOptions],
    [300, 400, 'ipip', 4, 33, 1234, 80, 0xfffffff0, 77, 0x19, 512, 0, false]);
  assert.equal(formatAddr(s.frame.subarray(s.srcOff), 4), '10.1.2.3');
  assert.equal(formatAddr(s.frame.subarray(s.dstOff), 4), '10.4.5.6');
  assert.equal(formatAddr(s.frame.subarray(s.outerSrcOff), 4), '192.168.9.1');
  assert.equal(formatAddr(s.frame.subarray(s.outerDstOff), 4), '192.168.9.2');
  assert.equal(text(s), 'hi');
});

test('IPv6 with extension headers: addresses, hop limit, payload', T, () => {
  const s = newTcpSegment();
  const frame = buildFrame({ src: 'fd00::a', dst: '2001:db8::b', sport: 5, dport: 6, ttl: 7, payload: 'six', ipv6Ext: [{ type: 0 }, { type: 51 }, { type: 60, lenUnits: 2 }, { type: 44 }] });
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, frame, s), 'tcp');
  assert.deepEqual([s.family, s.ttl, text(s)], [6, 7, 'six']);
  assert.equal(formatAddr(s.frame.subarray(s.srcOff), 6), 'fd00::a');
  assert.equal(formatAddr(s.frame.subarray(s.dstOff), 6), '2001:db8::b');
});

test('Linux cooked captures (SLL, SLL2) and raw IP link types', T, () => {
  const eth = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 80, payload: 'sll', vlans: [9] });
  const ip = eth.subarray(18);
  const sll = new Uint8Array(16 + eth.length - 12);
  sll.set([0, 0, 0, 1, 0, 6], 0);
  sll.set(eth.subarray(12), 14); // protocol field, then (here) a VLAN tag and the packet
  const sll2 = new Uint8Array(20 + ip.length);
  sll2.set([0x08, 0x00], 0);
  sll2.set(ip, 20);
  for (const [lt, f, vlan] of [[LINKTYPE_LINUX_SLL, sll, 9], [LINKTYPE_LINUX_SLL2, sll2, null], [LINKTYPE_RAW, ip, null], [LINKTYPE_IPV4, ip, null]] as const) {
    const s = newTcpSegment();
    assert.equal(decodeFrame(lt, f, s), 'tcp', `link type ${lt}`);
    assert.deepEqual([text(s), s.vlan], ['sll', vlan]);
  }
  assert.equal(decodeFrame(147, eth, newTcpSegment()), 'unsupported_link');
});

test('a snaplen cut is not a bogus length: the payload that is there, and what is missing', T, () => {
  const frame = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 80, payload: 'x'.repeat(100) });
  const s = newTcpSegment();
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, frame.subarray(0, 64), s, frame.length), 'tcp');
  assert.deepEqual([s.payloadLen, s.payloadMissing], [10, 90]);
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, frame.subarray(0, 64), s), 'bad_ip_length', 'same bytes, not cut: the header lies');
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, frame.subarray(0, 40), s, frame.length), 'truncated', 'cut inside the TCP header');
});

test('TCP options: well-formed or not, the segment is decoded', T, () => {
  assert.ok(tcpOptionsWellFormed(Uint8Array.of(2, 4, 5, 0xb4, 1, 0, 9, 9), 0, 8), 'EOL ends the walk');
  assert.ok(!tcpOptionsWellFormed(Uint8Array.of(8, 10, 0, 0), 0, 4), 'length past the end');
  assert.ok(!tcpOptionsWellFormed(Uint8Array.of(1, 1, 1, 5), 0, 4), 'kind without its length byte');
  assert.ok(!tcpOptionsWellFormed(Uint8Array.of(5, 1, 0, 0), 0, 4), 'length below 2');
  const s = newTcpSegment();
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 80, tcpOptions: [8, 40, 0, 0] }), s), 'tcp');
  assert.equal(s.badOptions, true);
});

test('every prefix of every kind of frame decodes without throwing', T, () => {
  const s = newTcpSegment();
  const frames = [
    buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 80, payload: 'abc', vlans: [1, 2], tunnel: { type: 'ipip', src: '1.1.1.1', dst: '2.2.2.2' }, ipOptions: [1, 1, 1, 1] }),
    buildFrame({ src: 'fd00::1', dst: 'fd00::2', sport: 1, dport: 80, payload: 'abc', ipv6Ext: [{ type: 0 }, { type: 44 }], tunnel: { type: 'sit', src: '1.1.1.1', dst: '2.2.2.2' } }),
  ];
  for (const f of frames) for (let n = 0; n <= f.length; n++) {
    for (const lt of [1, 101, 113, 276]) {
      decodeFrame(lt, f.subarray(0, n), s, f.length);
      decodeFrame(lt, f.subarray(0, n), s);
    }
  }
});

test('a VLAN tag the kernel stripped into metadata is the outermost and counts toward the bound', T, () => {
  const s = newTcpSegment();
  const one = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 80, vlans: [20] });
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, one, s, one.length, 0x2000 | 10), 'tcp');
  assert.deepEqual([s.vlan, s.vlanInner], [10, 20]);
  const two = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 80, vlans: [20, 30] });
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, two, s, two.length, 10), 'too_many_vlan_tags');
});

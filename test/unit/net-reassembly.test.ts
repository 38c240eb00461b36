import test from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrame, newTcpSegment } from '../../src/net/packet.js';
import { TcpReassembler, type CloseReason, type FlowInfo, type ReassemblyLimits, type StreamSink } from '../../src/net/tcp-reassembly.js';
import { buildFrame } from '../helpers/frames.js';

const T = { timeout: 10_000 };
type Event = ['data', boolean, string] | ['gap', boolean, number | null] | ['fin', boolean] | ['close', CloseReason];

class Recorder implements StreamSink {
  events: Event[] = [];
  constructor(readonly flow: FlowInfo) {}
  onData(c: boolean, d: Uint8Array): void {
    const last = this.events[this.events.length - 1];
    // Adjacent data events are joined: how bytes are cut into calls is not the contract.
    if (last && last[0] === 'data' && last[1] === c) last[2] += Buffer.from(d).toString('latin1');
    else this.events.push(['data', c, Buffer.from(d).toString('latin1')]);
  }
  onGap(c: boolean, n: number | null): void { this.events.push(['gap', c, n]); }
  onFin(c: boolean): void { this.events.push(['fin', c]); }
  onClose(r: CloseReason): void { this.events.push(['close', r]); }
}

function harness(limits: Partial<ReassemblyLimits> = {}) {
  const sinks: Recorder[] = [];
  const r = new TcpReassembler((flow) => { const s = new Recorder(flow); sinks.push(s); return s; },
    { perFlowBytes: 1 << 20, totalBytes: 1 << 24, maxFlows: 1000, idleTimeoutMs: 60_000, ...limits }, (p) => p === 80);
  const seg = newTcpSegment();
  const feed = (fromClient: boolean, seq: number, flags: number, payload = '', timeMs = 0, clientPort = 40000, snap?: number, ack = 0) => {
    let frame = buildFrame({ src: fromClient ? '10.0.0.1' : '10.0.0.2', dst: fromClient ? '10.0.0.2' : '10.0.0.1', sport: fromClient ? clientPort : 80, dport: fromClient ? 80 : clientPort, seq, ack, flags, payload });
    const orig = frame.length;
    if (snap !== undefined) frame = frame.subarray(0, snap);
    assert.equal(decodeFrame(1, frame, seg, orig), 'tcp');
    r.segment(seg, timeMs);
  };
  return { r, sinks, feed };
}

const SYN = 0x02, SYNACK = 0x12, ACK = 0x10, PSH = 0x18, FIN = 0x11, RST = 0x04;

test('in order after a handshake; FIN both ways closes; the initiator is the client', T, () => {
  const { r, sinks, feed } = harness();
  feed(true, 100, SYN); feed(false, 900, SYNACK); feed(true, 101, ACK);
  feed(true, 101, PSH, 'hello '); feed(true, 107, PSH, 'world'); feed(false, 901, PSH, 'ok');
  feed(true, 112, FIN); feed(false, 903, FIN);
  assert.deepEqual(sinks[0].flow, { client: '10.0.0.1:40000', server: '10.0.0.2:80', vlan: null, tunnel: null });
  assert.deepEqual(sinks[0].events, [['data', true, 'hello world'], ['data', false, 'ok'], ['fin', true], ['fin', false], ['close', 'fin']]);
  assert.equal(r.flowCount, 0);
});

test('sequence numbers wrap around 2^32, out of order across the wrap', T, () => {
  const { sinks, feed } = harness();
  const isn = 0xffffff00;
  feed(true, isn, SYN);
  const text = Array.from({ length: 40 }, (_, i) => String.fromCharCode(65 + (i % 26)).repeat(10)).join('');
  const segs = Array.from({ length: 40 }, (_, i) => [((isn + 1 + i * 10) >>> 0), text.slice(i * 10, i * 10 + 10)] as const);
  for (const i of [3, 1, 0, 2, ...Array.from({ length: 36 }, (_, k) => 39 - k)]) feed(true, segs[i][0], PSH, segs[i][1]);
  assert.deepEqual(sinks[0].events, [['data', true, text]]);
});

test('retransmissions and overlaps: the first-seen bytes win, and are counted', T, () => {
  const { r, sinks, feed } = harness();
  feed(true, 0, SYN);
  feed(true, 11, PSH, 'BBBBBBBBBB');   // [10,20) waits behind a hole
  feed(true, 16, PSH, 'cccccccccc');   // [15,25): only [20,25) is new
  feed(true, 1, PSH, 'aaaaaaaaaaXX');  // [0,12) fills the hole; its last two bytes lose to B
  feed(true, 1, PSH, 'zzzz');          // old retransmission
  feed(true, 21, PSH, 'yyyyyyy');      // [20,27): [25,27) new
  assert.deepEqual(sinks[0].events, [['data', true, 'aaaaaaaaaaBBBBBBBBBBcccccyy']]);
  assert.equal(r.counters.retransmittedSegments, 1);
  assert.equal(r.counters.overlapBytes, 5 + 2 + 5);
});

test('a hole nobody fills is given up at the per-flow limit: a gap, then the data after it', T, () => {
  const { r, sinks, feed } = harness({ perFlowBytes: 1000 });
  feed(true, 0, SYN);
  feed(true, 1, PSH, 'a'.repeat(10));
  for (let i = 0; i < 20; i++) feed(true, 111 + i * 100, PSH, 'b'.repeat(100)); // hole of 100 at [10,110)
  assert.deepEqual(sinks[0].events.slice(0, 2), [['data', true, 'a'.repeat(10)], ['gap', true, 100]]);
  assert.ok(r.pendingBytes <= 1000);
  assert.equal(r.counters.holesGivenUp, 1);
  assert.equal(r.counters.gapBytes, 100);
});

test('total limit across flows gives up holes of the least recently active flow first', T, () => {
  const { r, sinks, feed } = harness({ perFlowBytes: 10_000, totalBytes: 3000 });
  for (let f = 0; f < 4; f++) {
    feed(true, 0, SYN, '', 0, 41000 + f);
    feed(true, 101, PSH, 'x'.repeat(1000), 0, 41000 + f); // a hole of 100 before it
  }
  assert.ok(r.pendingBytes <= 3000);
  assert.deepEqual(sinks[0].events[0], ['gap', true, 100]);
  assert.deepEqual(sinks[3].events, []);
  assert.ok(r.counters.holesGivenUp >= 1);
});

test('flow table bound evicts the least recently active; idle flows expire', T, () => {
  const { r, sinks, feed } = harness({ maxFlows: 3, idleTimeoutMs: 1000 });
  for (let f = 0; f < 5; f++) feed(true, 0, SYN, '', f * 10, 42000 + f);
  assert.equal(r.flowCount, 3);
  assert.equal(r.counters.evictedFlows, 2);
  assert.deepEqual(sinks[0].events, [['close', 'evicted']]);
  feed(true, 1, PSH, 'late', 500, 42004);
  r.expire(1045);
  assert.equal(r.flowCount, 1, 'the two silent flows expired, the active one stays');
  assert.deepEqual(sinks[2].events, [['close', 'idle']]);
  assert.equal(r.counters.expiredFlows, 2);
});

test('SYN retransmitted is ignored; a new SYN after the end is a new connection; RST closes', T, () => {
  const { r, sinks, feed } = harness();
  feed(true, 0, SYN); feed(true, 0, SYN); feed(true, 1, PSH, 'one'); feed(true, 4, FIN);
  feed(true, 7000, SYN); feed(true, 7001, PSH, 'two'); feed(false, 300, RST);
  assert.equal(sinks.length, 2);
  assert.deepEqual(sinks[0].events, [['data', true, 'one'], ['fin', true], ['close', 'fin']]);
  assert.deepEqual(sinks[1].events, [['data', true, 'two'], ['close', 'reset']]);
  assert.equal(r.counters.retransmittedSegments, 1);
  feed(false, 1, ACK);
  assert.equal(r.counters.ignoredSegments, 1, 'a bare ACK of an unknown connection starts nothing');
});

test('a FIN behind a hole waits; flush gives the hole up, then the FIN counts', T, () => {
  const { r, sinks, feed } = harness();
  feed(true, 0, SYN); feed(true, 6, FIN | PSH, 'tail'); feed(true, 1, PSH, 'he');
  assert.deepEqual(sinks[0].events, [['data', true, 'he']]);
  r.flush(0);
  assert.deepEqual(sinks[0].events, [['data', true, 'he'], ['gap', true, 3], ['data', true, 'tail'], ['fin', true], ['close', 'end']]);
});

test('mid-stream pickup says so; payload cut by a snaplen is a gap at once', T, () => {
  const { sinks, feed } = harness();
  feed(true, 5000, PSH, 'mid', 0, 40000);
  assert.deepEqual(sinks[0].events, [['gap', true, null], ['data', true, 'mid']]);
  const full = 14 + 20 + 20;
  feed(true, 5003, PSH, 'abcdefgh', 0, 40000, full + 3);
  feed(true, 5011, PSH, 'next', 0, 40000);
  assert.deepEqual(sinks[0].events.slice(1), [['data', true, 'midabc'], ['gap', true, 5], ['data', true, 'next']]);
});

test('a hole the peer has acknowledged is given up at once (the capture lost it); a wild ACK is not believed', T, () => {
  const { r, sinks, feed } = harness();
  feed(true, 100, SYN); feed(false, 900, SYNACK, '', 0, 40000, undefined, 101);
  feed(true, 101, PSH, 'one');
  feed(true, 109, PSH, 'three'); // [104,109) never captured
  feed(false, 901, ACK, '', 0, 40000, undefined, 0x7fff0000); // nonsense ACK: ignored
  assert.deepEqual(sinks[0].events, [['data', true, 'one']]);
  feed(false, 901, PSH, 'reply', 0, 40000, undefined, 114); // acknowledges everything
  assert.deepEqual(sinks[0].events, [['data', true, 'one'], ['gap', true, 5], ['data', true, 'three'], ['data', false, 'reply']]);
  assert.equal(r.counters.holesAcked, 1);
});

// The accept decoder against the real layout: the struct is read from the built object's BTF
// (opening an object needs no root), filled the way the kernel fills it, and decoded.
import test from 'node:test';
import assert from 'node:assert/strict';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { objectPath } from '../../src/kernel/paths.js';
import { AcceptDecoder } from '../../src/capabilities/accept/accept.js';
import { parseAddr } from '../../src/net/addr.js';

const obj = BpfObject.open(objectPath('src/capabilities/accept/accept'));
const event = obj.struct('accept_event');
const endpoint = obj.struct('tcplens_endpoint');
test.after(() => obj.close());

function ep(addr: string, port: number): Uint8Array {
  const a = parseAddr(addr)!;
  return endpoint.encode({ addr: a.bytes, port, family: a.family });
}

function record(fields: Record<string, number | bigint | Uint8Array>): DataView {
  const bytes = new Uint8Array(event.size + 16);
  event.encode(fields, bytes, 16); // at an offset, as records sit in the ring
  return new DataView(bytes.buffer);
}

const now = process.hrtime.bigint();

test('a trusted TOA event decodes to the JSON users see', () => {
  const d = new AcceptDecoder(event, endpoint);
  const { record: r, listener } = d.decode(record({
    first_ns: now, last_ns: now, kernel_ns: 840n, count: 1, pid: 4242, comm: Buffer.from('nginx\0'),
    local: ep('10.0.0.2', 80), peer: ep('10.0.0.1', 34567), client: ep('10.5.12.70', 37325),
    toa_kind: 254, toa_len: 8, toa_source: 1, flags: 1 | 2, netns_ino: 4026531840, cgroup_id: 77n, ttl: 61,
  }), 16);
  assert.deepEqual({ ...r, time: undefined }, {
    time: undefined, local: '10.0.0.2:80', peer: '10.0.0.1:34567', client: '10.5.12.70:37325',
    toa: { kind: 254, len: 8, source: 'ack', claimed: '10.5.12.70:37325' }, trusted: true, malformed: null,
    count: 1, summary: false, ttl: 61, hops: 3, kernel_ns: 840, pid: 4242, comm: 'nginx', cgroup: null, netns: 4026531840,
  });
  assert.deepEqual(listener, { netnsIno: 4026531840, port: 80, cgroupId: 77n, pid: 4242, comm: 'nginx' }, 'what the names are looked up by');
  assert.ok(Math.abs(Date.parse(r.time) - Date.now()) < 5000, 'monotonic time becomes wall time');
});

test('untrusted TOA: no client, but the claim is shown; a window summary averages the cost', () => {
  const d = new AcceptDecoder(event, endpoint);
  const { record: r } = d.decode(record({
    first_ns: now - 2_000_000_000n, last_ns: now, kernel_ns: 3000n, count: 3,
    local: ep('fd00::2', 443), peer: ep('fd00::1', 5000), client: ep('2001:db8::9', 1),
    toa_kind: 253, toa_len: 20, toa_source: 2, flags: 2 | 4 | 0x20,
  }), 16);
  assert.equal(r.summary, true);
  assert.equal(r.client, null);
  assert.equal(r.trusted, false);
  assert.deepEqual(r.toa, { kind: 253, len: 20, source: 'syn', claimed: '[2001:db8::9]:1' });
  assert.equal(r.local, '[fd00::2]:443');
  assert.equal(r.count, 3);
  assert.equal(r.kernel_ns, 1000);
  assert.ok(r.last && Date.parse(r.last) - Date.parse(r.time) >= 1999);
});

test('no TOA, malformed options, a conflict (with or without the first TOA taken), toa.ko source', () => {
  const d = new AcceptDecoder(event, endpoint);
  const m = d.decode(record({ first_ns: now, last_ns: now, count: 1, local: ep('10.0.0.2', 8080), peer: ep('10.0.0.1', 1), flags: 8 }), 16).record;
  assert.deepEqual([m.client, m.toa, m.trusted, m.malformed, m.pid, m.comm], [null, null, null, 'bad_option', null, null]);
  const conflict = { first_ns: now, last_ns: now, count: 1, local: ep('10.0.0.2', 80), peer: ep('10.0.0.1', 1),
    client: ep('10.5.12.70', 5), toa_kind: 254, toa_len: 8, toa_source: 1 };
  const rejected = d.decode(record({ ...conflict, flags: 2 | 0x10 }), 16).record;
  assert.deepEqual([rejected.client, rejected.malformed, rejected.toa?.claimed], [null, 'conflict', '10.5.12.70:5']);
  const first = d.decode(record({ ...conflict, flags: 1 | 2 | 0x10 }), 16).record;
  assert.deepEqual([first.client, first.malformed], ['10.5.12.70:5', 'conflict'], '--toa-conflict first: used, and still flagged');
  const k = d.decode(record({ first_ns: now, last_ns: now, count: 1, local: ep('10.0.0.2', 81), peer: ep('10.0.0.1', 1),
    client: ep('1.2.3.4', 5), toa_kind: 254, toa_len: 8, toa_source: 3, flags: 3 }), 16).record;
  assert.equal(k.toa?.source, 'toa.ko');
  assert.equal(k.pid, null);
});

test('a layout that lost a field is refused with TCPLENS_ERR_LAYOUT', () => {
  assert.throws(() => event.field('no_such_field'), { code: 'TCPLENS_ERR_LAYOUT' });
  assert.throws(() => event.field('count', 8), { code: 'TCPLENS_ERR_LAYOUT' });
});

test('hop distance from the arriving TTL: 64, 128 and 255 start values; no TTL is no distance', () => {
  const d = new AcceptDecoder(event, endpoint);
  const hops = (ttl: number) => d.decode(record({ first_ns: now, last_ns: now, count: 1, local: ep('10.0.0.2', 80), peer: ep('10.0.0.1', 1), ttl }), 16).record.hops;
  assert.deepEqual([hops(64), hops(62), hops(127), hops(250), hops(30)], [0, 2, 1, 5, 2]);
  assert.equal(hops(0), null);
});

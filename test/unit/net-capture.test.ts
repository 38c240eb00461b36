import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureReader } from '../../src/net/capture-reader.js';
import type { CaptureRecord } from '../../src/net/capture-record.js';
import { PcapWriter } from '../../src/net/pcap.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../src/net/link-type.js';
import { buildFrame } from '../helpers/frames.js';
import { buildPcapng } from '../helpers/pcapng-builder.js';

interface Got { linkType: number; iface: number; sec: number; nsec: number; data: Buffer; origLen: number }

function readAll(bytes: Uint8Array, chunkSizes: number[] = [bytes.length || 1]): { got: Got[]; summary: ReturnType<CaptureReader['end']> } {
  const got: Got[] = [];
  const r = new CaptureReader((rec: CaptureRecord) => got.push({ linkType: rec.linkType, iface: rec.interfaceId, sec: rec.sec, nsec: rec.nsec, data: Buffer.from(rec.data), origLen: rec.origLen }));
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = chunkSizes[i % chunkSizes.length];
    r.push(bytes.subarray(at, at + n));
    at += n;
  }
  return { got, summary: r.end() };
}

const frames = Array.from({ length: 25 }, (_, i) => buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000 + i, dport: 80, payload: 'x'.repeat(i * 37) }));

function writePcap(w: PcapWriter, list = frames): Buffer {
  return Buffer.concat([w.header(), ...list.map((f, i) => w.record(1_700_000_000 + i, i * 1_000_123, f))]);
}

function withTmp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-capture-'));
  try { return fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

const tcpdumpCount = (file: string) => execFileSync('tcpdump', ['-n', '-r', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n').filter(Boolean).length;

test('pcap (micro and nano): what we write reads back, whole or one byte at a time', { timeout: 20_000 }, () => {
  for (const nanosecond of [false, true]) {
    const bytes = writePcap(new PcapWriter({ nanosecond }));
    for (const chunks of [[bytes.length], [1], [7, 3, 1000], [16, 24]]) {
      const { got, summary } = readAll(bytes, chunks);
      assert.equal(summary.format, 'pcap');
      assert.equal(got.length, frames.length);
      assert.equal(summary.truncatedBytes, 0);
      got.forEach((g, i) => {
        assert.deepEqual(g.data, Buffer.from(frames[i]));
        assert.equal(g.sec, 1_700_000_000 + i);
        assert.equal(g.nsec, nanosecond ? i * 1_000_123 : Math.floor((i * 1_000_123) / 1000) * 1000);
        assert.equal(g.linkType, LINKTYPE_ETHERNET);
      });
    }
  }
});

test('Debian tcpdump lists our pcap and its rewrite of it reads back (micro, nano, snaplen)', { timeout: 30_000 }, () => withTmp((dir) => {
  for (const [name, w] of [['micro', new PcapWriter()], ['nano', new PcapWriter({ nanosecond: true })], ['snap', new PcapWriter({ snaplen: 60 })]] as const) {
    const ours = join(dir, `${name}.pcap`);
    const theirs = join(dir, `${name}-tcpdump.pcap`);
    writeFileSync(ours, writePcap(w));
    assert.equal(tcpdumpCount(ours), frames.length, `${name}: tcpdump -r counts our packets`);
    execFileSync('tcpdump', ['-r', ours, '-w', theirs], { stdio: 'ignore' });
    const { got } = readAll(readFileSync(theirs), [4096]);
    assert.equal(got.length, frames.length);
    got.forEach((g, i) => {
      const want = Buffer.from(frames[i]).subarray(0, w.snaplen);
      assert.deepEqual(g.data, want, `${name} #${i} bytes`);
      assert.equal(g.origLen, frames[i].length, `${name} #${i} wire length survives the snaplen`);
      assert.equal(g.sec, 1_700_000_000 + i);
      assert.equal(Math.floor(g.nsec / 1000), Math.floor((i * 1_000_123) / 1000), `${name} #${i} microseconds`);
    });
  }
}));

test('big-endian pcap is read the same', { timeout: 5_000 }, () => {
  const le = writePcap(new PcapWriter({ nanosecond: true }), frames.slice(0, 3));
  const be = Buffer.from(le);
  const swap32 = (at: number) => be.writeUInt32BE(le.readUInt32LE(at), at);
  const swap16 = (at: number) => be.writeUInt16BE(le.readUInt16LE(at), at);
  swap32(0); swap16(4); swap16(6); swap32(8); swap32(12); swap32(16); swap32(20);
  for (let at = 24; at < le.length;) {
    const cap = le.readUInt32LE(at + 8);
    for (let k = 0; k < 16; k += 4) swap32(at + k);
    at += 16 + cap;
  }
  const { got } = readAll(be, [5]);
  assert.equal(got.length, 3);
  assert.deepEqual(got[2].data, Buffer.from(frames[2]));
  assert.equal(got[2].nsec, 2 * 1_000_123);
});

test('pcapng: both byte orders, several interfaces and link types, tsresol, SPB, PB, unknown blocks', { timeout: 10_000 }, () => {
  const raw = frames[1].subarray(14); // the IP packet alone, for a raw-IP interface
  const bytes = buildPcapng([
    { kind: 'shb' },
    { kind: 'unknown', type: 0x0bad, body: Uint8Array.of(1, 2, 3) },
    { kind: 'idb', linkType: LINKTYPE_ETHERNET },                                  // microseconds
    { kind: 'idb', linkType: LINKTYPE_RAW, tsresol: 9 },                           // nanoseconds
    { kind: 'idb', linkType: LINKTYPE_ETHERNET, tsresol: 0x80 | 20, tsoffset: 10 }, // 2^-20 s, +10 s
    { kind: 'epb', iface: 0, ts: 1_700_000_000_123_456n, data: frames[0] },
    { kind: 'epb', iface: 1, ts: 1_700_000_001_987_654_321n, data: raw },
    { kind: 'epb', iface: 2, ts: (5n << 20n) | (1n << 19n), data: frames[2], origLen: frames[2].length + 100 },
    { kind: 'spb', data: frames[3] },
    { kind: 'pb', iface: 0, ts: 2_000_000n, data: frames[4] },
    { kind: 'shb', bigEndian: true },
    { kind: 'idb', linkType: LINKTYPE_ETHERNET, tsresol: 3 },
    { kind: 'epb', iface: 0, ts: 1_234_567n, data: frames[5] },
  ]);
  for (const chunks of [[bytes.length], [1], [13]]) {
    const { got, summary } = readAll(bytes, chunks);
    assert.equal(summary.format, 'pcapng');
    assert.equal(got.length, 6);
    assert.deepEqual([got[0].sec, got[0].nsec, got[0].linkType], [1_700_000_000, 123_456_000, LINKTYPE_ETHERNET]);
    assert.deepEqual([got[1].sec, got[1].nsec, got[1].linkType, got[1].iface], [1_700_000_001, 987_654_321, LINKTYPE_RAW, 1]);
    assert.deepEqual(got[1].data, Buffer.from(raw));
    assert.deepEqual([got[2].sec, got[2].nsec, got[2].origLen], [15, 500_000_000, frames[2].length + 100]);
    assert.deepEqual(got[3].data, Buffer.from(frames[3]), 'simple packet block');
    assert.deepEqual([got[4].sec, got[4].data.length], [2, frames[4].length], 'obsolete packet block');
    assert.deepEqual([got[5].sec, got[5].nsec, got[5].iface], [1234, 567_000_000, 0], 'big-endian section, milliseconds');
    assert.deepEqual(got[5].data, Buffer.from(frames[5]));
  }
});

test('Debian tcpdump lists a single-interface pcapng of ours', { timeout: 10_000 }, () => withTmp((dir) => {
  const file = join(dir, 'one.pcapng');
  writeFileSync(file, buildPcapng([{ kind: 'shb' }, { kind: 'idb', linkType: 1, tsresol: 9 }, ...frames.map((data, i) => ({ kind: 'epb' as const, iface: 0, ts: BigInt(i) * 1_000_000_000n, data }))]));
  assert.equal(tcpdumpCount(file), frames.length);
}));

test('corrupt and truncated captures: TCPLENS_ERR_PCAP after the good records, or counted at the end', { timeout: 10_000 }, () => {
  const good = writePcap(new PcapWriter(), frames.slice(0, 4));
  // Cut in the middle of the last record: three records and the cut counted.
  const cut = good.subarray(0, good.length - 10);
  const { got, summary } = readAll(cut, [100]);
  assert.equal(got.length, 3);
  assert.ok(summary.truncatedBytes > 0);
  // A record header claiming 100 MB: the records before it are delivered, then the error.
  const bad = Buffer.concat([good, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 6])]);
  const seen: number[] = [];
  const r = new CaptureReader((rec) => seen.push(rec.data.length));
  assert.throws(() => r.push(bad), { code: 'TCPLENS_ERR_PCAP' });
  assert.equal(seen.length, 4);
  assert.throws(() => r.push(Buffer.alloc(10)), { code: 'TCPLENS_ERR_PCAP' }, 'stays failed');
  assert.throws(() => readAll(Buffer.from('GET / HTTP/1.1\r\n\r\n')), { code: 'TCPLENS_ERR_PCAP', message: /magic/ });
  assert.throws(() => new CaptureReader(() => {}).end(), { code: 'TCPLENS_ERR_PCAP', message: /empty/ });
  assert.throws(() => readAll(good.subarray(0, 20)), { code: 'TCPLENS_ERR_PCAP', message: /header/ });
  const usb = new PcapWriter({ linkType: 189 });
  assert.throws(() => readAll(usb.header()), { code: 'TCPLENS_ERR_PCAP', message: /link type 189/ });
  const ng = buildPcapng([{ kind: 'shb' }, { kind: 'idb', linkType: 189 }, { kind: 'epb', iface: 0, ts: 0n, data: frames[0] }]);
  assert.throws(() => readAll(ng), { code: 'TCPLENS_ERR_PCAP', message: /link type 189/ });
  const mixed = buildPcapng([{ kind: 'shb' }, { kind: 'idb', linkType: 189 }, { kind: 'idb', linkType: 1 }, { kind: 'epb', iface: 0, ts: 0n, data: frames[0] }, { kind: 'epb', iface: 1, ts: 0n, data: frames[1] }]);
  const m = readAll(mixed);
  assert.equal(m.got.length, 1);
  assert.equal(m.summary.skippedUnsupportedLinkType, 1);
  const badTrail = Buffer.from(buildPcapng([{ kind: 'shb' }, { kind: 'idb', linkType: 1 }]));
  badTrail.writeUInt32LE(999, badTrail.length - 4);
  assert.throws(() => readAll(badTrail), { code: 'TCPLENS_ERR_PCAP', message: /trailing length/ });
  const undescribed = buildPcapng([{ kind: 'shb' }, { kind: 'epb', iface: 3, ts: 0n, data: frames[0] }]);
  assert.throws(() => readAll(undescribed), { code: 'TCPLENS_ERR_PCAP', message: /interface 3/ });
});

import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureReader } from '../../src/net/capture-reader.js';
import { HttpPipeline } from '../../src/net/http-pipeline.js';
import type { HttpExchange } from '../../src/net/http1.js';
import { PcapWriter } from '../../src/net/pcap.js';
import { httpFixture, type ExpectedExchange } from '../helpers/http-fixture.js';
import { buildPcapng } from '../helpers/pcapng-builder.js';
import { pcapOf } from '../helpers/tcp-conversation.js';

function decode(bytes: Uint8Array, chunk: number): { ex: HttpExchange[]; p: HttpPipeline } {
  const ex: HttpExchange[] = [];
  const p = new HttpPipeline({ ports: [80], onExchange: (e) => ex.push(e) });
  const r = new CaptureReader((rec) => p.record(rec));
  for (let at = 0; at < bytes.length; at += chunk) r.push(bytes.subarray(at, at + chunk));
  r.end();
  p.flush();
  return { ex, p };
}

function check(ex: HttpExchange[], expected: ExpectedExchange[]): void {
  const got = [...ex].sort((a, b) => a.path.localeCompare(b.path));
  const want = [...expected].sort((a, b) => a.path.localeCompare(b.path));
  assert.deepEqual(got.map((e) => [e.path, e.status, e.error]), want.map((e) => [e.path, e.status, e.error]));
  for (const w of want) {
    const e = got.find((g) => g.path === w.path)!;
    if (w.vlan !== undefined) assert.equal(e.vlan, w.vlan, w.path);
    if (w.tunnel) assert.deepEqual(e.tunnel, { type: 'ipip', src: '172.16.0.1', dst: '172.16.0.2' }, w.path);
    if (w.resp_bytes !== undefined) assert.equal(e.resp_bytes, w.resp_bytes, w.path);
    assert.match(e.time, /^2026-12-01T09:00:00\.\d{3}Z$/);
  }
}

test('generated pcap, its tcpdump rewrite and a pcapng of it give the same exchanges', { timeout: 30_000 }, () => {
  const { frames, expected } = httpFixture();
  const pcap = pcapOf(frames);
  const pcapng = buildPcapng([{ kind: 'shb' }, { kind: 'idb', linkType: 1, tsresol: 9 },
    ...frames.map((f) => ({ kind: 'epb' as const, iface: 0, ts: BigInt(f.timeMs) * 1_000_000n, data: f.frame }))]);
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-http-'));
  try {
    const ours = join(dir, 'ours.pcap');
    const theirs = join(dir, 'theirs.pcap');
    writeFileSync(ours, pcap);
    const out = execFileSync('tcpdump', ['-n', '-e', '-vv', '-r', ours], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 }).toString();
    const listed = out.trim().split('\n').filter((l) => /^\d\d:/.test(l));
    assert.ok(!out.includes('incorrect'), 'tcpdump finds every checksum correct');
    assert.equal(listed.length, frames.length, 'tcpdump -r lists every packet we wrote');
    assert.ok(listed.some((l) => l.includes('vlan 42')) && out.includes('172.16.0.1 > 172.16.0.2'), 'tcpdump sees the VLAN and the tunnel');
    execFileSync('tcpdump', ['-r', ours, '-w', theirs], { stdio: 'ignore' });
    for (const [name, bytes] of [['ours', pcap], ['tcpdump', readFileSync(theirs)], ['pcapng', pcapng]] as const) {
      for (const chunk of [65536, 1000, 37]) {
        const { ex, p } = decode(bytes, chunk);
        assert.equal(p.counters.packets, frames.length, name);
        check(ex, expected);
        assert.equal(p.counters.http.parseErrors, 5, `${name}: CL+TE, two CLs, huge header, garbage, TLS`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a capture read as a stream (as --read - will) gives the same exchanges', { timeout: 10_000 }, async () => {
  const { frames, expected } = httpFixture();
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-http-'));
  try {
    const file = join(dir, 'f.pcap');
    writeFileSync(file, pcapOf(frames, new PcapWriter()));
    const ex: HttpExchange[] = [];
    const p = new HttpPipeline({ ports: [80], onExchange: (e) => ex.push(e) });
    const r = new CaptureReader((rec) => p.record(rec));
    for await (const chunk of createReadStream(file, { highWaterMark: 4096 })) r.push(chunk as Buffer);
    r.end();
    p.flush();
    check(ex, expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a capture cut in the middle still yields the exchanges before the cut', { timeout: 10_000 }, () => {
  const { frames } = httpFixture();
  const pcap = pcapOf(frames, new PcapWriter());
  const { ex } = decode(pcap.subarray(0, Math.floor(pcap.length * 0.6) + 3), 4096);
  assert.ok(ex.some((e) => e.path === '/vlan' && e.status === 200));
});

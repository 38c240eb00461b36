// Random and mutated input for a fixed time: nothing but a TcplensError may leave the capture
// reader, nothing at all may leave the pipeline, and memory stays within the configured bounds.
import test from 'node:test';
import assert from 'node:assert/strict';
import { isTcplensError } from '../../src/errors.js';
import { CaptureReader } from '../../src/net/capture-reader.js';
import { HttpPipeline } from '../../src/net/http-pipeline.js';
import { llhttpMemoryBytes } from '../../src/net/llhttp.js';
import { httpFixture } from '../helpers/http-fixture.js';
import { pcapOf, TcpConversation } from '../helpers/tcp-conversation.js';

const SECONDS = Number(process.env.TCPLENS_FUZZ_SECONDS ?? 1.5);
const T = { timeout: 60_000 };

/** xorshift32: reproducible from the seed printed on failure. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
}

function mutate(b: Uint8Array, r: () => number): Uint8Array {
  const out = Uint8Array.from(b);
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * out.length);
    const kind = r();
    if (kind < 0.6) out[at] = Math.floor(r() * 256);
    else if (kind < 0.8) out[at] ^= 1 << Math.floor(r() * 8);
    else out[at] = [0, 0xff, 0x7f, 0x80][Math.floor(r() * 4)];
  }
  return r() < 0.2 ? out.subarray(0, Math.floor(r() * out.length)) : out;
}

const limits = { perFlowBytes: 64 * 1024, totalBytes: 256 * 1024, maxFlows: 64, idleTimeoutMs: 5_000 };

function runFor(seconds: number, body: (r: () => number, seed: number) => void): number {
  const end = Date.now() + seconds * 1000;
  let runs = 0;
  for (let seed = 1; Date.now() < end; seed++, runs++) {
    try { body(rng(seed * 2654435761), seed); } catch (e) { throw new Error(`seed ${seed}: ${(e as Error).stack}`); }
  }
  return runs;
}

test('mutated frames through the whole pipeline: no exception, bounded memory', T, () => {
  const { frames } = httpFixture();
  const heap0 = process.memoryUsage().heapUsed;
  let worstPending = 0, worstFlows = 0, exchanges = 0;
  const runs = runFor(SECONDS, (r) => {
    const p = new HttpPipeline({ ports: [80], limits, http: { maxHeaderBytes: 8192 }, onExchange: () => { exchanges++; } });
    for (const f of frames) {
      const frame = r() < 0.3 ? mutate(f.frame, r) : f.frame;
      p.packet(r() < 0.02 ? Math.floor(r() * 300) : 1, frame, r() < 0.05 ? frame.length + 100 : frame.length, f.timeMs + Math.floor(r() * 3));
      if (r() < 0.05) p.packet(1, mutate(frames[Math.floor(r() * frames.length)].frame, r), frame.length, f.timeMs);
      worstPending = Math.max(worstPending, p.pendingBytes);
      worstFlows = Math.max(worstFlows, p.flows);
    }
    p.flush();
    assert.equal(p.flows, 0);
  });
  assert.ok(worstPending <= limits.totalBytes, `pending ${worstPending}`);
  assert.ok(worstFlows <= limits.maxFlows, `flows ${worstFlows}`);
  assert.ok(runs > 3, `runs ${runs}`);
  assert.ok(exchanges > 0);
  assert.ok(llhttpMemoryBytes() <= 4 << 20, `llhttp memory ${llhttpMemoryBytes()}`);
  assert.ok(process.memoryUsage().heapUsed - heap0 < 256 << 20, 'heap stays bounded');
});

test('random and mutated captures: only TCPLENS_ERR_PCAP leaves the reader', T, () => {
  const { frames } = httpFixture();
  const good = pcapOf(frames.slice(0, 200));
  let errors = 0;
  runFor(SECONDS, (r) => {
    const bytes = r() < 0.2 ? Uint8Array.from({ length: Math.floor(r() * 4000) }, () => Math.floor(r() * 256)) : mutate(good, r);
    const p = new HttpPipeline({ ports: [80], limits, onExchange: () => {} });
    const reader = new CaptureReader((rec) => p.record(rec));
    try {
      for (let at = 0; at < bytes.length;) { const n = 1 + Math.floor(r() * 5000); reader.push(bytes.subarray(at, at + n)); at += n; }
      reader.end();
    } catch (e) {
      if (!isTcplensError(e) || e.code !== 'TCPLENS_ERR_PCAP') throw e;
      errors++;
    }
    p.flush();
  });
  assert.ok(errors > 0);
});

test('random HTTP byte streams at random cut points: no exception', T, () => {
  const pieces = ['GET / HTTP/1.1\r\n', 'Host: h\r\n', 'Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n', '\r\n', '5\r\nhello\r\n', '0\r\n\r\n',
    'HTTP/1.1 200 OK\r\n', 'HTTP/1.1 100 Continue\r\n\r\n', 'Upgrade: x\r\nConnection: upgrade\r\n', 'HEAD /h HTTP/1.1\r\n', 'CONNECT a:1 HTTP/1.1\r\n', '\x00\xff\x16\x03', 'xxxxx'];
  runFor(SECONDS, (r) => {
    const p = new HttpPipeline({ ports: [80], limits, http: { maxHeaderBytes: 1024 }, onExchange: () => {} });
    const mk = () => Array.from({ length: 1 + Math.floor(r() * 30) }, () => pieces[Math.floor(r() * pieces.length)]).join('');
    const conv = new TcpConversation({ client: '10.0.0.1', server: '10.0.0.2', clientPort: 1024 + Math.floor(r() * 60000), serverPort: 80 }).handshake();
    for (let i = 0; i < 6; i++) { conv.send(true, mk(), 1 + Math.floor(r() * 200)); conv.send(false, mk(), 1 + Math.floor(r() * 200)); }
    if (r() < 0.5) conv.fin(true).fin(false); else conv.rst(r() < 0.5);
    for (const f of conv.frames) if (r() > 0.03) p.packet(1, f.frame, f.frame.length, f.timeMs);
    p.flush();
  });
});

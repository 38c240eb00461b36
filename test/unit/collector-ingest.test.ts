// The pure parts of ingest: NDJSON split at any chunk boundary, line numbers in errors, and the
// collector's flags (listen address, token rule, sizes).
import test from 'node:test';
import assert from 'node:assert/strict';
import { NdjsonRows } from '../../src/collector/ndjson-body.js';
import { CAPABILITIES } from '../../src/collector/schema.js';
import { collectorOptions, flags, isLoopback, parseListen, sizeFlag } from '../../src/cli/collector.js';
import { parseFlags } from '../../src/cli/flags.js';
import { hopsRecord } from '../helpers/collector-records.js';

const body = [hopsRecord('a'), hopsRecord('b'), hopsRecord('c')].map((r) => JSON.stringify(r)).join('\n');

test('NDJSON: the same rows whatever the chunking; CRLF and blank lines are fine; no final newline needed', () => {
  for (const size of [1, 7, 64, body.length]) {
    const p = new NdjsonRows(CAPABILITIES.hops);
    const text = `${body.replaceAll('\n', '\r\n')}\n\n`;
    for (let i = 0; i < text.length; i += size) p.push(text.slice(i, i + size));
    assert.equal(p.end().length, 3, `chunks of ${size}`);
  }
  const p = new NdjsonRows(CAPABILITIES.hops);
  p.push(body);
  assert.equal(p.end().length, 3);
});

test('NDJSON: the first bad line is named by number', () => {
  const p = new NdjsonRows(CAPABILITIES.hops);
  assert.throws(() => p.push(`${JSON.stringify(hopsRecord('a'))}\n\n{"target":1}\n`), { code: 'TCPLENS_ERR_BAD_EVENT', message: /^line 3: target: expected a string/ });
  const q = new NdjsonRows(CAPABILITIES.hops);
  assert.throws(() => q.push('{"target":\n'), { code: 'TCPLENS_ERR_BAD_EVENT', message: /^line 1: not JSON/ });
});

test('NDJSON: an endless line is refused before it is held', () => {
  const p = new NdjsonRows(CAPABILITIES.hops);
  assert.throws(() => { for (let i = 0; i < 100; i++) p.push('x'.repeat(10_000)); }, { code: 'TCPLENS_ERR_BAD_EVENT', message: /longer than/ });
});

test('--listen: host:port, [v6]:port; loopback needs no token, anything else does', () => {
  assert.deepEqual(parseListen('127.0.0.1:7070'), { host: '127.0.0.1', port: 7070 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  for (const bad of ['7070', '1.2.3.4:99999', '[nothost]:1', '::1:80']) assert.throws(() => parseListen(bad), { code: 'TCPLENS_ERR_BAD_FLAG' }, bad);
  assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost'));
  assert.ok(!isLoopback('0.0.0.0') && !isLoopback('10.0.0.1') && !isLoopback('::'));
  assert.throws(() => collectorOptions(parseFlags(['--listen', '0.0.0.0:7070'], flags, 'collector')), { code: 'TCPLENS_ERR_NEEDS_TOKEN' });
});

test('defaults: 127.0.0.1:7070, 7 days, 16 MiB bodies; sizes with suffixes', () => {
  const o = collectorOptions(parseFlags([], flags, 'collector'));
  assert.deepEqual(o.listen, { host: '127.0.0.1', port: 7070 });
  assert.equal(o.retentionMs, 7 * 86400_000);
  assert.equal(o.maxBodyBytes, 16 * 1024 * 1024);
  assert.equal(sizeFlag('max-body', '64k'), 65536);
  assert.throws(() => sizeFlag('max-body', '10'), { code: 'TCPLENS_ERR_BAD_FLAG' });
});

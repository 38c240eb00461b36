import test from 'node:test';
import assert from 'node:assert/strict';
import { parseFlags, durationFlag } from '../../src/cli/flags.js';
import { acceptOptions, summaryLine, flags } from '../../src/cli/accept.js';

// Built the way the command builds it (async so throws become rejections).
async function opts(argv: string[]) {
  return acceptOptions(parseFlags(argv, flags, 'accept'));
}

test('defaults: both families, all ports, 10s window, every default dialect, no trust list', async () => {
  const o = await opts([]);
  assert.equal(o.family, 0);
  assert.deepEqual(o.ports, []);
  assert.equal(o.mergeWindowNs, 10_000_000_000n);
  assert.equal(o.dialects.length, 3);
  assert.deepEqual(o.trusted, []);
  assert.equal(o.saveSyn, false, 'SYNs are kept only when asked: the option outlives the listener\'s tracing');
  assert.equal(o.toaConflict, 'reject');
  assert.equal(o.mergeCapacity, 16384);
  assert.equal(o.readToaKo, false, 'the toa module is not loaded here');
});

test('flags become options: ports (repeated and comma lists), -6, window, trust list, dialects', async () => {
  const o = await opts(['-p', '80', '--port', '443,8443', '-6', '--merge-window', '250ms', '--trusted-lb', '10.0.0.0/8,fd00::/8',
    '--toa', '200/8', '--save-syn', '--toa-conflict', 'first', '--merge-capacity', '64']);
  assert.deepEqual(o.ports, [80, 443, 8443]);
  assert.equal(o.family, 6);
  assert.equal(o.mergeWindowNs, 250_000_000n);
  assert.deepEqual(o.trusted.map((c) => c.text), ['10.0.0.0/8', 'fd00::/8']);
  assert.deepEqual(o.dialects.at(-1), { kind: 200, len: 8, family: 4 });
  assert.equal(o.saveSyn, true);
  assert.equal(o.toaConflict, 'first');
  assert.equal(o.mergeCapacity, 64);
  assert.deepEqual((await opts(['--toa', '200/8', '--no-default-toa'])).dialects, [{ kind: 200, len: 8, family: 4 }]);
});

test('durations', () => {
  assert.equal(durationFlag('x', '0'), 0n);
  assert.equal(durationFlag('x', '10'), 10_000_000_000n);
  assert.equal(durationFlag('x', '1.5s'), 1_500_000_000n);
  assert.equal(durationFlag('x', '2m'), 120_000_000_000n);
  assert.equal(durationFlag('x', '90m'), 5400_000_000_000n, 'a long --duration is a duration, not a merge-window error');
  for (const bad of ['', 's', '-1s', '10 s', '1e3']) assert.throws(() => durationFlag('x', bad), { code: 'TCPLENS_ERR_BAD_FLAG' }, bad);
  assert.throws(() => durationFlag('merge-window', '2h', 3600_000_000_000n, 'TCPLENS_ERR_BAD_WINDOW'), { code: 'TCPLENS_ERR_BAD_WINDOW' });
});

test('bad flag values carry their codes', async () => {
  await assert.rejects(opts(['--port', '0']), { code: 'TCPLENS_ERR_BAD_PORT' });
  await assert.rejects(opts(['--trusted-lb', '300.1.1.1']), { code: 'TCPLENS_ERR_BAD_CIDR' });
  await assert.rejects(opts(['stray']), { code: 'TCPLENS_ERR_BAD_FLAG' });
  await assert.rejects(opts(['--toa-ko', 'maybe']), { code: 'TCPLENS_ERR_BAD_FLAG' });
  await assert.rejects(opts(['--toa-conflict', 'last']), { code: 'TCPLENS_ERR_BAD_FLAG' });
  await assert.rejects(opts(['--merge-capacity', '0']), { code: 'TCPLENS_ERR_BAD_FLAG' });
  assert.equal((await opts(['--toa-ko', 'yes'])).readToaKo, true);
  assert.throws(() => parseFlags(['--nope'], {}, 'accept'), { code: 'TCPLENS_ERR_UNKNOWN_FLAG' });
});

test('summary line names every counter', () => {
  const line = summaryLine({ lost: 1, connections: 9, events: 5, merged: 4, merge_full: 2, toa_seen: 8, toa_untrusted: 2, toa_malformed: 1, toa_conflict: 1, no_toa: 1, filtered: 3, records: 5 });
  assert.equal(line, 'tcplens accept: 9 connections in 5 events (4 merged, 2 unmerged: merge map full), 1 lost; TOA seen 8, untrusted 2, conflict 1, malformed 1, none 1; filtered 3');
});

test('--collector: accept ships to a collector beside its local output; its companion flags need it', async () => {
  const { shipperFromFlags } = await import('../../src/cli/collector-agent-flags.js');
  assert.equal(shipperFromFlags(parseFlags([], flags, 'accept'), 'accept'), null);
  const s = shipperFromFlags(parseFlags(['--collector', 'http://127.0.0.1:7070', '--agent-name', 'gw-1'], flags, 'accept'), 'accept');
  assert.ok(s);
  await s!.drain(0);
  assert.throws(() => shipperFromFlags(parseFlags(['--agent-name', 'gw-1'], flags, 'accept'), 'accept'), { code: 'TCPLENS_ERR_BAD_FLAG' });
  assert.throws(() => shipperFromFlags(parseFlags(['--collector', 'localhost:7070'], flags, 'accept'), 'accept'), { code: 'TCPLENS_ERR_BAD_FLAG' });
  assert.throws(() => shipperFromFlags(parseFlags(['--collector', 'http://127.0.0.1:7070', '--collector-buffer', '0'], flags, 'accept'), 'accept'), { code: 'TCPLENS_ERR_BAD_FLAG' });
});

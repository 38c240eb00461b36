// The agent's pure rules: batches cut by count and bytes with ids RUN-1, RUN-2, ...; backoff
// grows to its cap with jitter; names and URLs are checked before anything is sent.
import test from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, Batcher, checkAgentName, checkCollectorUrl, defaultAgentName } from '../../src/collector/agent.js';

test('batches are cut at the event count or the byte size, whichever comes first; ids run on', () => {
  const b = new Batcher('r1', 3, 100);
  assert.equal(b.add('a\n', 2), null);
  assert.equal(b.add('b\n', 2), null);
  assert.deepEqual(b.add('c\n', 2), { id: 'r1-1', body: 'a\nb\nc\n', events: 3, bytes: 6 });
  assert.deepEqual(b.add(`${'x'.repeat(99)}\n`, 100), { id: 'r1-2', body: `${'x'.repeat(99)}\n`, events: 1, bytes: 100 });
  assert.equal(b.seal(), null, 'nothing pending: no empty batch');
  b.add('d\n', 2);
  assert.equal(b.seal()!.id, 'r1-3');
});

test('backoff doubles from min to max, with jitter between half and all of it', () => {
  assert.equal(backoffMs(0, 100, 10_000, () => 1), 100);
  assert.equal(backoffMs(3, 100, 10_000, () => 1), 800);
  assert.equal(backoffMs(50, 100, 10_000, () => 1), 10_000);
  assert.equal(backoffMs(3, 100, 10_000, () => 0), 400);
});

test('agent names and collector URLs are checked up front', () => {
  assert.equal(checkAgentName('gw-1.dc2'), 'gw-1.dc2');
  for (const bad of ['', '-x', 'a b', 'a/b', 'x'.repeat(65)]) assert.throws(() => checkAgentName(bad), { code: 'TCPLENS_ERR_BAD_FLAG' }, bad);
  assert.match(defaultAgentName(), /^[A-Za-z0-9][A-Za-z0-9._-]*$/);
  assert.equal(checkCollectorUrl('http://127.0.0.1:7070').port, '7070');
  for (const bad of ['127.0.0.1:7070', 'ftp://x', 'http://x/?a=1', 'http://u:p@x']) assert.throws(() => checkCollectorUrl(bad), { code: 'TCPLENS_ERR_BAD_FLAG' }, bad);
});

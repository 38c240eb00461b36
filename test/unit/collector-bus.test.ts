// The bus's pure rules: --bus URLs, stream names, subjects and message ids, replicas, which
// existing streams and consumers fit, and the agent flags that do not go together.
import test from 'node:test';
import assert from 'node:assert/strict';
import { batchMsgId, batchSubject, checkStreamName, parseBusUrls, replicasFor, streamSubjects } from '../../src/collector/bus/names.js';
import { consumerConfig, consumerIncompatibility, streamConfig, streamIncompatibility } from '../../src/collector/bus/stream.js';
import { shipperFromFlags } from '../../src/cli/collector-agent-flags.js';
import { collectorOptions, flags } from '../../src/cli/collector.js';
import { parseFlags } from '../../src/cli/flags.js';

test('--bus takes one or more nats://HOST[:PORT], 4222 by default, repeats dropped', () => {
  assert.deepEqual(parseBusUrls('nats://127.0.0.1:4222'), ['nats://127.0.0.1:4222']);
  assert.deepEqual(parseBusUrls('nats://n1, nats://n2:5222,nats://n1:4222'), ['nats://n1:4222', 'nats://n2:5222']);
  assert.deepEqual(parseBusUrls('nats://[::1]:4222/'), ['nats://[::1]:4222']);
  for (const bad of ['', '127.0.0.1:4222', 'http://x:4222', 'nats://u:p@x:4222', 'nats://x:4222/path', 'nats://x:4222?a=1',
    'nats://x:0', 'nats://x:70000', 'nats://:4222', 'nats://x,', 'nats://a b']) {
    assert.throws(() => parseBusUrls(bad), { code: 'TCPLENS_ERR_BUS_URL' }, bad);
  }
});

test('stream names are one subject token; batches go to STREAM.CAPABILITY.AGENT with (agent, batch) as the message id', () => {
  assert.equal(checkStreamName('tcplens'), 'tcplens');
  for (const bad of ['', 'a.b', 'a>', 'a*', 'a b', 'x'.repeat(33)]) assert.throws(() => checkStreamName(bad), { code: 'TCPLENS_ERR_BAD_FLAG' }, bad);
  assert.equal(batchSubject('tcplens', 'http', 'gw-1.dc2'), 'tcplens.http.gw-1.dc2');
  assert.ok(batchSubject('s', 'hops', 'a.b.c').startsWith(streamSubjects('s').slice(0, -1)), 'every agent name is under STREAM.>');
  assert.equal(batchMsgId('gw-1', 'run1-7'), 'gw-1/run1-7');
  assert.notEqual(batchMsgId('a', 'r-1'), batchMsgId('b', 'r-1'), 'two agents never share a message id');
});

test('a new stream: file storage, work queue, replicas = cluster size up to 3, a duplicate window', () => {
  assert.deepEqual([1, 2, 3, 5, 0].map(replicasFor), [1, 2, 3, 3, 1]);
  const c = streamConfig('tcplens', 3);
  assert.deepEqual({ subjects: c.subjects, storage: c.storage, retention: c.retention, replicas: c.num_replicas }, { subjects: ['tcplens.>'], storage: 'file', retention: 'workqueue', replicas: 3 });
  assert.ok(c.duplicate_window! >= 60e9, 'at least a minute of duplicate window');
  assert.equal(streamIncompatibility('tcplens', c as never), null, 'what we create fits');
  assert.equal(consumerIncompatibility('tcplens', consumerConfig('tcplens', 10_000) as never), null);
  assert.equal(consumerConfig('tcplens', 10_000).ack_wait, 10e9);
});

test('an existing stream or consumer that cannot carry batches safely is named with the reason', () => {
  const ok = { subjects: ['tcplens.>'], retention: 'workqueue' as const, storage: 'file' as const, duplicate_window: 120e9 };
  assert.equal(streamIncompatibility('tcplens', { ...ok, retention: 'limits' }), null, 'limits retention is fine (an archive)');
  assert.match(streamIncompatibility('tcplens', { ...ok, subjects: ['other.>'] })!, /subjects/);
  assert.match(streamIncompatibility('tcplens', { ...ok, retention: 'interest' })!, /interest/);
  assert.match(streamIncompatibility('tcplens', { ...ok, storage: 'memory' })!, /memory storage/);
  assert.match(streamIncompatibility('tcplens', { ...ok, duplicate_window: 0 })!, /duplicate window/);
  assert.match(consumerIncompatibility('tcplens', { ack_policy: 'none' })!, /ack policy/);
  assert.match(consumerIncompatibility('tcplens', { ack_policy: 'explicit', deliver_subject: 'x' })!, /push/);
  assert.match(consumerIncompatibility('tcplens', { ack_policy: 'explicit', filter_subject: 'tcplens.http.>' })!, /only/);
});

test('agent flags: --bus or --collector, --stream only with --bus, --token-file only with --collector', () => {
  assert.equal(shipperFromFlags({}, 'hops'), null);
  assert.throws(() => shipperFromFlags({ collector: 'http://127.0.0.1:7070', bus: 'nats://127.0.0.1:4222' }, 'hops'), { code: 'TCPLENS_ERR_BAD_FLAG', message: /give one/ });
  assert.throws(() => shipperFromFlags({ stream: 'x' }, 'hops'), { code: 'TCPLENS_ERR_BAD_FLAG', message: /--stream/ });
  assert.throws(() => shipperFromFlags({ bus: 'nats://127.0.0.1:4222', 'token-file': '/x' }, 'hops'), { code: 'TCPLENS_ERR_BAD_FLAG', message: /--token-file/ });
  assert.throws(() => shipperFromFlags({ bus: 'nats://127.0.0.1:4222', stream: 'a.b' }, 'hops'), { code: 'TCPLENS_ERR_BAD_FLAG', message: /--stream a\.b/ });
  assert.throws(() => shipperFromFlags({ bus: 'http://127.0.0.1:4222' }, 'hops'), { code: 'TCPLENS_ERR_BUS_URL' });
});

test('collector flags: --bus parsed with its stream, --stream alone refused', () => {
  const o = collectorOptions(parseFlags(['--bus', 'nats://n1,nats://n2', '--stream', 'fleet'], flags, 'collector'));
  assert.deepEqual(o.bus, { servers: ['nats://n1:4222', 'nats://n2:4222'], stream: 'fleet' });
  assert.equal(collectorOptions(parseFlags([], flags, 'collector')).bus, null);
  assert.throws(() => collectorOptions(parseFlags(['--stream', 'x'], flags, 'collector')), { code: 'TCPLENS_ERR_BAD_FLAG' });
  assert.throws(() => collectorOptions(parseFlags(['--bus', 'nats://x:99999'], flags, 'collector')), { code: 'TCPLENS_ERR_BUS_URL' });
});

// Agents -> NATS JetStream -> collectors, with real nats-server processes (Debian's) on loopback
// ports: a three-node JetStream cluster (R3, file storage) where the stream leader and one of two
// collectors are killed with SIGKILL during ingest from three agents, and still every event is
// stored; a bus that is down when the agent starts and again mid-run (the agent goes on, buffers,
// and catches up); a real `tcplens http --read --bus` agent; and the bus's coded errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { CollectorShipper, SHIPPER_DEFAULTS } from '../../src/collector/agent.js';
import { BusPublisher } from '../../src/collector/bus/publisher.js';
import { DURABLE } from '../../src/collector/bus/names.js';
import { BUS_CONSUMER_DEFAULTS } from '../../src/collector/bus/consumer.js';
import { RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { events, freePort, startCollector, tempDir, type Collector } from '../helpers/collector-process.js';
import { hopsRecord } from '../helpers/collector-records.js';
import { startNats } from '../helpers/nats-cluster.js';
import { httpFixture } from '../helpers/http-fixture.js';
import { pcapOf } from '../helpers/tcp-conversation.js';
import { runTcplens } from '../kernel/helpers/tcplens-cli.js';

const agentChild = join(repoRoot, 'dist', 'test', 'helpers', 'collector-agent-child.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function busCollector(t: { after: (fn: () => Promise<unknown>) => void }, db: string, bus: string, more: string[] = []): Promise<Collector> {
  const c = await startCollector(db, { args: ['--bus', bus, ...more], track: t });
  for (let i = 0; !/consuming as/.test(c.stderr()); i++) {
    assert.ok(i < 300, `collector never consumed: ${c.stderr()}`);
    await sleep(50);
  }
  return c;
}

function agent(t: { after: (fn: () => void) => void }, bus: string, name: string, count: number, perTick: number) {
  const p = spawn(process.execPath, [agentChild, bus, name, String(count), String(perTick)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout!.on('data', (d) => { out += d; });
  p.stderr!.on('data', (d) => { err += d; });
  t.after(() => { if (p.exitCode === null) p.kill('SIGKILL'); });
  return { name, p, out: () => out, err: () => err };
}

async function exitOf(p: ChildProcess, out: () => string, err: () => string): Promise<{ code: number | null; stats: any }> {
  const timer = setTimeout(() => p.kill('SIGKILL'), 90_000);
  const [code] = p.exitCode !== null ? [p.exitCode] : await once(p, 'exit');
  clearTimeout(timer);
  try { return { code, stats: JSON.parse(out()) }; } catch { throw new Error(`agent printed no stats (exit ${code}): ${out()} ${err()}`); }
}

test('R3 cluster: kill -9 the stream leader and one of two collectors during ingest from three agents: every event is stored', { timeout: 240_000 }, async (t) => {
  const dir = tempDir(t, 'tcplens-bus-');
  const n = await startNats(dir, 3);
  t.after(() => n.stop());
  const c1 = await busCollector(t, join(dir, 'c1.duckdb'), n.bus);
  let c2 = await busCollector(t, join(dir, 'c2.duckdb'), n.bus);
  const info = await n.withJsm((jsm) => jsm.streams.info('tcplens'));
  assert.deepEqual([info.config.num_replicas, info.config.storage, info.config.retention], [3, StorageType.File, RetentionPolicy.Workqueue]);

  const COUNT = 5000;
  const agents = ['b1', 'b2', 'b3'].map((name) => agent(t, n.bus, name, COUNT, 10));
  // Kill once both collectors store batches, so both kills land mid-ingest.
  for (let i = 0; ; i++) {
    const [e1, e2] = await Promise.all([events(c1.url, { capability: 'hops' }), events(c2.url, { capability: 'hops' })]);
    if (e1.length > 0 && e2.length > 0) break;
    assert.ok(i < 300, 'the collectors never both got batches');
    await sleep(25);
  }
  const leader = await n.streamLeader('tcplens');
  assert.ok(leader, 'the stream has a leader');
  await n.kill9(leader);
  await sleep(300);
  const c2AtKill = (await events(c2.url, { capability: 'hops' })).length;
  await c2.kill9();

  const results = await Promise.all(agents.map((a) => exitOf(a.p, a.out, a.err)));
  for (const [i, a] of agents.entries()) {
    assert.equal(results[i].code, 0, `${a.name}: ${JSON.stringify(results[i].stats)} ${a.err()}`);
    assert.equal(results[i].stats.acked, COUNT, a.name);
  }
  assert.ok(results.some((r) => r.stats.retries > 0), 'the agents did meet the leader change');
  // What collector 2 took and never acknowledged comes back to collector 1 after the ack wait.
  await n.drained('tcplens', DURABLE, 60_000);
  const got1 = await events(c1.url, { capability: 'hops' });
  c2 = await startCollector(join(dir, 'c2.duckdb'), { track: t }); // its file as kill -9 left it (no --bus: just read)
  const got2 = await events(c2.url, { capability: 'hops' });
  const key = (e: Record<string, unknown>) => `${e.agent} ${e.target}`;
  const in1 = new Set(got1.map(key)), in2 = new Set(got2.map(key));
  assert.equal(in1.size, got1.length, 'collector 1 stored no event twice');
  assert.equal(in2.size, got2.length, 'collector 2 stored no event twice');
  const all = new Set([...in1, ...in2]);
  const want = agents.flatMap((a) => Array.from({ length: COUNT }, (_, k) => `${a.name} ${a.name}/${k}`));
  assert.deepEqual([...all].sort(), want.sort(), 'every event is stored, none missing, none made up');
  // Two DuckDB files are two stores: a batch collector 2 committed in the instant before its ack
  // is in both (a shared store's (agent, batch) check makes it one). That window holds at most the
  // batches it had in hand, never more.
  const both = [...in2].filter((k) => in1.has(k)).length;
  assert.ok(both <= BUS_CONSUMER_DEFAULTS.maxInflight * 100, `${both} events in both stores`); // the agents' batches hold 100
  assert.ok(got2.length >= c2AtKill && got2.length > 0, 'collector 2 had stored its share');
  process.stderr.write(`# leader ${leader} killed; collector 1 stored ${got1.length}, collector 2 ${got2.length} (${both} in both); ` +
    `agent retries ${results.map((r) => r.stats.retries).join('/')}, duplicate publishes ${results.map((r) => r.stats.duplicates).join('/')}\n`);
  await c2.stop();
  assert.equal(await c1.stop(), 0, c1.stderr());
});

test('bus down when the agent starts and again mid-run: the agent goes on, buffers, retries and catches up; each event stored once', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, 'tcplens-bus-');
  const n = await startNats(dir, 1);
  t.after(() => n.stop());
  const c = await busCollector(t, join(dir, 'c.duckdb'), n.bus);
  await n.kill9('n1');
  const notices: string[] = [];
  const shipper = new CollectorShipper<object>({
    ...SHIPPER_DEFAULTS, transport: new BusPublisher({ servers: [n.nodes[0].url], stream: 'tcplens', agentName: 'down', timeoutMs: 1000 }),
    capability: 'hops', agentName: 'down', token: null, maxBatchEvents: 100, flushMs: 20, retryMinMs: 50, retryMaxMs: 300, notice: (m) => notices.push(m),
  });
  let i = 0;
  const write = (k: number) => { for (const end = i + k; i < end;) shipper.write(hopsRecord(`down/${i++}`)); };
  write(1000);
  await sleep(1500);
  assert.equal(shipper.stats.acked, 0, 'nothing delivered while the bus is down');
  assert.ok(shipper.stats.retries > 0, 'it kept retrying');
  await n.start('n1');
  for (let k = 0; shipper.stats.acked < 1000; k++) { assert.ok(k < 300, `caught up only ${shipper.stats.acked}`); await sleep(50); }
  // A second outage while records keep coming.
  await n.kill9('n1');
  for (let k = 0; k < 10; k++) { write(100); await sleep(100); }
  await n.start('n1');
  const stats = await shipper.drain(30_000);
  assert.deepEqual({ acked: stats.acked, dropped: stats.dropped, unsent: stats.unsent, rejected: stats.rejected }, { acked: 2000, dropped: 0, unsent: 0, rejected: 0 });
  assert.ok(notices.some((m) => /retrying/.test(m)) && notices.some((m) => /reachable again/.test(m)), notices.join('\n'));
  await n.drained('tcplens', DURABLE, 30_000);
  const targets = (await events(c.url, { agent: 'down' })).map((e) => e.target as string);
  assert.equal(targets.length, 2000);
  assert.deepEqual(targets, Array.from({ length: 2000 }, (_, k) => `down/${k}`), 'each once, in order');
  assert.match(c.stderr(), /disconnected .*reconnect|reconnected/, 'the collector rode out the outages');
  assert.equal(await c.stop(), 0, c.stderr());
});

test('a real agent: http --read --bus ships exactly what it prints; --collector and --bus do not go together', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'tcplens-bus-');
  const n = await startNats(dir, 1);
  t.after(() => n.stop());
  const c = await busCollector(t, join(dir, 'c.duckdb'), n.bus);
  const file = join(dir, 'f.pcap');
  writeFileSync(file, pcapOf(httpFixture().frames));
  const r = await runTcplens(['http', '--read', file, '--json', '--bus', n.bus, '--agent-name', 'reader']);
  assert.equal(r.code, 0, r.stderr);
  const printed = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(printed.length >= 5, r.stdout);
  assert.match(r.stderr, new RegExp(`bus: ${printed.length} records acknowledged in 1 batches`));
  await n.drained('tcplens', DURABLE, 20_000);
  assert.deepStrictEqual((await events(c.url, { agent: 'reader', capability: 'http' })).map(({ agent: _a, capability: _c, ...e }) => e), printed);
  const both = await runTcplens(['http', '--read', file, '--bus', n.bus, '--collector', c.url]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /TCPLENS_ERR_BAD_FLAG: --collector and --bus: give one/);
  assert.equal(await c.stop(), 0);
});

test('bus errors: a bad URL, an incompatible stream (coded, exit 2); a bus that is not up yet is waited for with a notice', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'tcplens-bus-');
  const bad = await runTcplens(['collector', '--bus', 'http://127.0.0.1:4222', '--db', join(dir, 'x.duckdb')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /TCPLENS_ERR_BUS_URL: --bus http:\/\/127\.0\.0\.1:4222: .*\n {2}hint: e\.g\. --bus nats:\/\//);
  assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/, 'no stack trace');

  const n = await startNats(dir, 1);
  t.after(() => n.stop());
  await n.withJsm((jsm) => jsm.streams.add({ name: 'other', subjects: ['elsewhere.>'], storage: StorageType.File }));
  const wrong = await runTcplens(['collector', '--listen', '127.0.0.1:0', '--bus', n.bus, '--stream', 'other', '--db', join(dir, 'w.duckdb')]);
  assert.equal(wrong.code, 2, wrong.stderr);
  assert.match(wrong.stderr, /TCPLENS_ERR_BUS_STREAM: stream other: its subjects are \["elsewhere\.>"\], not other\.>\n {2}hint: use another --stream/);

  const port = await freePort();
  const early = await startCollector(join(dir, 'e.duckdb'), { args: ['--bus', `nats://127.0.0.1:${port}`], track: t });
  for (let i = 0; !/unreachable \(.+\); retrying/.test(early.stderr()); i++) { assert.ok(i < 200, early.stderr()); await sleep(50); }
  assert.equal(await early.stop(), 0, early.stderr());
});

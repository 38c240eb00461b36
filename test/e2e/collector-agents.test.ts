// Agents shipping to a real collector process (with each store, DuckDB and ClickHouse in chDB, for
// the crash tests): kill -9 the collector while three agent
// processes ingest, restart it on the same port and file, and every event each agent produced is
// stored exactly once. Also: a collector that is away at first, a full buffer (dropped, counted
// and reported to the collector), and a batch refused for good (counted, not retried forever).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { CollectorShipper, SHIPPER_DEFAULTS } from '../../src/collector/agent.js';
import { call, events, freePort, startCollector, tempDir } from '../helpers/collector-process.js';
import { hopsRecord } from '../helpers/collector-records.js';
import { newStoreArg, STORE_KINDS } from '../helpers/collector-stores.js';

const agentChild = join(repoRoot, 'dist', 'test', 'helpers', 'collector-agent-child.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function exitOf(p: ChildProcess, out: () => string, err: () => string): Promise<{ code: number | null; stats: any }> {
  const timer = setTimeout(() => p.kill('SIGKILL'), 90_000);
  const [code] = p.exitCode !== null ? [p.exitCode] : await once(p, 'exit');
  clearTimeout(timer);
  let stats: unknown = null;
  try { stats = JSON.parse(out()); } catch { throw new Error(`agent printed no stats (exit ${code}): ${out()} ${err()}`); }
  return { code, stats };
}

for (const kind of STORE_KINDS) {
  test(`${kind}: kill -9 of the collector during ingest from three agents: after a restart every event is stored exactly once`, { timeout: 120_000 }, async (t) => {
    const dir = tempDir(t);
    const db = newStoreArg(kind, dir);
    const port = await freePort();
    let c = await startCollector(db, { port, track: t });
    const COUNT = 6000;
    const agents = ['a1', 'a2', 'a3'].map((name) => {
      const p = spawn(process.execPath, [agentChild, c.url, name, String(COUNT), '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      p.stdout!.on('data', (d) => { out += d; });
      p.stderr!.on('data', (d) => { err += d; });
      t.after(() => { if (p.exitCode === null) p.kill('SIGKILL'); });
      return { name, p, out: () => out, err: () => err };
    });
    // Kill only once each agent has something acknowledged, so the kill lands mid-ingest.
    for (let i = 0; ; i++) {
      const got = await events(c.url, { capability: 'hops', limit: '100000' });
      if (agents.every((a) => got.some((e) => e.agent === a.name))) break;
      assert.ok(i < 200, 'agents never got a batch in');
      await sleep(25);
    }
    const before = (await events(c.url, { capability: 'hops', limit: '100000' })).length;
    await c.kill9();
    await sleep(800); // agents meet a closed port meanwhile and back off
    c = await startCollector(db, { port, track: t });
    const results = await Promise.all(agents.map((a) => exitOf(a.p, a.out, a.err)));
    const stored = await events(c.url, { capability: 'hops', limit: '100000' });
    assert.ok(before > 0 && before < 3 * COUNT, `killed mid-ingest (${before} of ${3 * COUNT} stored at the kill)`);
    for (const [i, a] of agents.entries()) {
      const { code, stats } = results[i];
      assert.equal(code, 0, `${a.name}: ${JSON.stringify(stats)} ${a.err()}`);
      assert.equal(stats.acked, COUNT);
      const mine = stored.filter((e) => e.agent === a.name).map((e) => e.target as string);
      assert.equal(mine.length, COUNT, `${a.name}: stored ${mine.length}`);
      assert.deepEqual(mine.sort(), Array.from({ length: COUNT }, (_, k) => `${a.name}/${k}`).sort(), 'each event once, none missing');
    }
    assert.ok(results.some((r) => r.stats.retries > 0), 'the agents did meet the outage');
    process.stderr.write(`# at the kill: ${before} stored; retries ${results.map((r) => r.stats.retries).join('/')}, duplicate acks ${results.map((r) => r.stats.duplicates).join('/')}\n`);
    await c.stop();
  });
}

test('collector away at first and a small buffer: what fits is delivered once it comes, the rest is dropped and counted', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const notices: string[] = [];
  const shipper = new CollectorShipper<object>({
    ...SHIPPER_DEFAULTS, url: `http://127.0.0.1:${port}`, capability: 'hops', agentName: 'small', token: null, version: '9.9.9-test',
    maxBatchEvents: 50, flushMs: 10, bufferBytes: 20_000, retryMinMs: 50, retryMaxMs: 200, notice: (m) => notices.push(m),
  });
  for (let i = 0; i < 1000; i++) shipper.write(hopsRecord(`s/${i}`));
  await sleep(300);
  const c = await startCollector(join(dir, 'e.duckdb'), { port, track: t });
  const stats = await shipper.drain(20_000);
  assert.ok(stats.dropped > 0 && stats.acked > 0, JSON.stringify(stats));
  assert.equal(stats.acked + stats.dropped, 1000, JSON.stringify(stats));
  assert.equal(stats.unsent, 0);
  const got = await events(c.url, { agent: 'small' });
  assert.equal(got.length, stats.acked);
  assert.deepEqual(got.map((e) => e.target), Array.from({ length: stats.acked }, (_, i) => `s/${i}`), 'the first records are kept, in order');
  assert.ok(notices.some((n) => /buffer full/.test(n)) && notices.some((n) => /retrying/.test(n)) && notices.some((n) => /reachable again/.test(n)), notices.join('\n'));
  const agents = await call(`${c.url}/v1/agents`, 'GET');
  assert.deepEqual(agents.json.agents.map((a: any) => [a.name, a.version, a.events, a.drops]), [['small', '9.9.9-test', stats.acked, stats.dropped]],
    'the batches after the outage told the collector how many were dropped');
  await c.stop();
});

test('a batch the collector refuses for good (400) is counted as rejected and not retried', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const c = await startCollector(join(dir, 'e.duckdb'), { track: t });
  const notices: string[] = [];
  const shipper = new CollectorShipper<object>({
    ...SHIPPER_DEFAULTS, url: c.url, capability: 'accept', agentName: 'wrong', token: null, flushMs: 10, notice: (m) => notices.push(m),
  });
  for (let i = 0; i < 10; i++) shipper.write(hopsRecord(`w/${i}`));
  const stats = await shipper.drain(10_000);
  assert.deepEqual({ rejected: stats.rejected, retries: stats.retries, acked: stats.acked }, { rejected: 10, retries: 0, acked: 0 });
  assert.match(notices.join('\n'), /TCPLENS_ERR_BAD_EVENT: line 1: time: missing/);
  await c.stop();
});

/** One agent ships COUNT events to a collector that kills itself at failpoint, then comes back:
 * the agent's final stats, and the events stored (each exactly once, none missing). */
async function crashMidBatch(t: Parameters<typeof tempDir>[0] & { after: (fn: () => unknown) => void }, store: string, failpoint: string) {
  const port = await freePort();
  let c = await startCollector(store, { port, track: t, env: { TCPLENS_COLLECTOR_FAILPOINT: failpoint } });
  const COUNT = 2000;
  const p = spawn(process.execPath, [agentChild, c.url, 'd1', String(COUNT), '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout!.on('data', (d) => { out += d; });
  p.stderr!.on('data', (d) => { err += d; });
  t.after(() => { if (p.exitCode === null) p.kill('SIGKILL'); });
  const [, signal] = await once(c.proc, 'exit');
  assert.equal(signal, 'SIGKILL', c.stderr());
  c = await startCollector(store, { port, track: t });
  const { code, stats } = await exitOf(p, () => out, () => err);
  assert.equal(code, 0, err);
  assert.equal(stats.acked, COUNT, JSON.stringify(stats));
  const targets = (await events(c.url, { agent: 'd1' })).map((e) => e.target as string);
  assert.equal(targets.length, COUNT, 'no event twice, none missing');
  assert.equal(new Set(targets).size, COUNT);
  await c.stop();
  return stats;
}

for (const kind of STORE_KINDS) {
  test(`${kind}: a collector that dies after committing a batch but before acknowledging it: the retry is acknowledged as a duplicate and stored once`, { timeout: 60_000 }, async (t) => {
    const stats = await crashMidBatch(t, newStoreArg(kind, tempDir(t)), 'die-after-commit:5');
    assert.ok(stats.duplicates >= 1, `the unacknowledged batch came back as a duplicate: ${JSON.stringify(stats)}`);
  });
}

// ClickHouse only (DuckDB commits rows and batch id in one transaction): a collector that dies
// after a batch's rows went in but before its id did; the retry is stored, and its rows once.
test('clickhouse: a collector that dies between a batch\'s rows and its id: the retry stores the rows once', { timeout: 60_000 }, async (t) => {
  await crashMidBatch(t, newStoreArg('clickhouse', tempDir(t)), 'die-after-rows:5');
});

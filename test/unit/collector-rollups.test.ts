// The rollups against a real DuckDB file: every rollup-backed answer (top clients, connections
// over time, balance with its exact percentiles) equals the answer from the rows alone (balance:
// DuckDB's own quantile_disc over the rows, independent of balance.ts's bucket arithmetic), for ranges cut anywhere (whole buckets from the
// rollup, ragged ends from the rows), with agent and service filters, after a duplicate batch,
// after retention cut through a bucket, and after a rebuild.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventStore } from '../../src/collector/store.js';
import { CAPABILITIES, recordToRow } from '../../src/collector/schema.js';
import { buildSeries, buildTopClients, parseSeries, parseTopClients } from '../../src/collector/queries/connections.js';
import { rebuildRollups, rollupSource, SERIES_ROLLUP } from '../../src/collector/rollups.js';
import { DUCKDB } from '../../src/collector/queries/dialect.js';
import { DuckDBInstance } from '@duckdb/node-api';
import { acceptRecord, httpRecord } from '../helpers/collector-records.js';
import { balanceRows, buildBalanceHistogram, buildBalanceOnePass, buildBalanceValues, parseBalance, percentileTargets, pickPercentiles } from '../../src/collector/queries/balance.js';

const T0 = Date.UTC(2026, 11, 1, 18, 0, 0);
const NOW = T0 + 4 * 3600_000;

/** 3000 accept records over four hours: 3 agents, 4 services, v4 and v6 clients and peers, some merged summaries. */
function records(batch: number) {
  return Array.from({ length: 500 }, (_, j) => {
    const i = batch * 500 + j;
    // every batch spreads over all four hours, so later batches add to buckets earlier ones began
    const time = new Date(T0 + Math.floor((((i * 7919) % 3000) * 4 * 3600_000) / 3000) + (i % 7)).toISOString();
    const base = { ...acceptRecord(i), time, local: `10.0.${i % 4}.1:80`, client: i % 9 === 0 ? null : i % 10 === 0 ? `[2001:db8::${i % 3}]:${1000 + i}` : `192.0.2.${i % 40}:${1000 + i}`, peer: `10.1.0.${i % 5}:4${i % 100}` };
    return i % 11 === 0 ? { ...base, summary: true, count: 1 + (i % 5), last: new Date(Date.parse(time) + 1500).toISOString() } : base;
  });
}

/** 3000 http exchanges over the same hours: 3 agents (one capturing in two netns), in on :80 and out
 * to pods, latencies of every kind: exponential in whole microseconds, zero, negative, huge, none. */
function httpRecords(batch: number) {
  let seed = batch + 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: 500 }, (_, j) => {
    const i = batch * 500 + j;
    const time = new Date(T0 + Math.floor((((i * 7919) % 3000) * 4 * 3600_000) / 3000) + (i % 7)).toISOString();
    const latency = i % 37 === 0 ? null : i % 53 === 0 ? 0 : i % 211 === 0 ? -1 : i % 307 === 0 ? 86_400_000 : Math.round(-6 * Math.log(1 - rand()) * 1000) / 1000;
    const netns = batch % 3 === 2 ? (i % 2 ? { netns: { name: 'tl-gw-a' } } : { netns: 'tl-gw-b' }) : {};
    return { ...httpRecord(i), time, server: i % 3 ? `10.2.0.${i % 4}:8080` : `10.1.0.${i % 2}:80`, latency_ms: latency,
      status: latency === null ? null : i % 29 === 0 ? 503 : 200, error: latency === null ? 'no_response' : null, ...netns };
  });
}

/** GET /v1/balance's rows the plain way: DuckDB's nearest-rank quantile over every latency. */
async function referenceBalance(store: EventStore, f: ReturnType<typeof parseBalance>): Promise<unknown[][]> {
  const b = buildBalanceOnePass(f, DUCKDB);
  return (await store.read(b.sql, b.params)).map((r) => r.map((v) => (typeof v === 'bigint' ? Number(v) : v)));
}

const sorted = (rows: unknown[][]) => rows.map((r) => JSON.stringify(r)).sort();

const ranges: Record<string, string>[] = [
  {}, { since: '1796148000' }, { since: '2026-12-01T18:17:13.250Z' }, { since: '2026-12-01T18:17:13.250Z', until: '2026-12-01T21:44:59.999Z' },
  { since: '2026-12-01T19:00:00Z', until: '2026-12-01T21:00:00Z' }, { until: '2026-12-01T20:30:00Z' }, { since: '2026-12-01T19:10:00Z', until: '2026-12-01T19:50:00Z' },
  { since: '2026-12-01T18:17:13.250Z', agent: 'n1' }, { since: '2026-12-01T18:17:13.250Z', service: '10.0.2.1:80' },
];

async function sameAnswers(store: EventStore, what: string): Promise<void> {
  let rolledRanges = 0;
  for (const r of ranges) {
    const top = parseTopClients(new URLSearchParams({ ...r, limit: '1000' }), NOW);
    assert.deepStrictEqual(await store.read(buildTopClients(top).sql, buildTopClients(top).params), await store.read(buildTopClients(top, DUCKDB, false).sql, buildTopClients(top, DUCKDB, false).params), `${what}: top clients ${JSON.stringify(r)}`);
    for (const step of ['60s', '5m', '1h', '10s']) {
      const s = parseSeries(new URLSearchParams({ ...r, step }), NOW);
      const rolled = await store.read(buildSeries(s).sql, buildSeries(s).params);
      assert.deepStrictEqual(rolled, await store.read(buildSeries(s, DUCKDB, false).sql, buildSeries(s, DUCKDB, false).params), `${what}: series ${step} ${JSON.stringify(r)}`);
    }
    const b = parseBalance(new URLSearchParams(Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'service'))), NOW);
    const reference = sorted(await referenceBalance(store, b));
    const answer = await balanceRows(b, store);
    assert.deepStrictEqual(sorted(answer), reference, `${what}: balance ${JSON.stringify(r)}`);
    assert.ok(answer.length >= 5, `${answer.length} backends`);
    // and the rollup answers by itself (balanceRows would hide a broken one behind its retry)
    const h = buildBalanceHistogram(b);
    if (!h.rolled) continue;
    rolledRanges++;
    const plan = percentileTargets(await store.read(h.sql, h.params));
    const v = buildBalanceValues(b, plan.buckets);
    const alone = pickPercentiles(plan, await store.read(v.sql, v.params));
    assert.ok(alone, `${what}: balance ${JSON.stringify(r)}: the rollup disagrees with the rows`);
    assert.deepStrictEqual(sorted(alone), reference, `${what}: balance from the rollup ${JSON.stringify(r)}`);
  }
  assert.ok(rolledRanges >= 4, `${what}: ${rolledRanges} ranges read the latency rollup`);
}

test('rollup answers equal the raw answers: after ingest, a duplicate, retention through a bucket, and a rebuild', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-rollups-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'events.duckdb');
  let now = NOW;
  const store = await EventStore.open(path, { retentionMs: 3 * 3600_000, retentionEveryMs: 3600_000, now: () => now });
  const batches = [...Array.from({ length: 6 }, (_, b) => ({ agent: `n${b % 3}`, capability: 'accept' as const, batch: `r-${b}`,
    rows: records(b).map((rec, i) => recordToRow(CAPABILITIES.accept, rec, `line ${i + 1}`)) })),
  ...Array.from({ length: 6 }, (_, b) => ({ agent: `n${b % 3}`, capability: 'http' as const, batch: `h-${b}`,
    rows: httpRecords(b).map((rec, i) => recordToRow(CAPABILITIES.http, rec, `line ${i + 1}`)) }))];
  // two at once (one group commit), then one by one (each group adds to the buckets before it)
  assert.deepEqual(await Promise.all([batches[0], batches[1]].map((b) => store.ingest(b))), ['stored', 'stored']);
  for (const b of [...batches.slice(2), batches[2], batches[8]]) await store.ingest(b);
  assert.equal(await store.ingest(batches[3]), 'duplicate');
  // The rollup is really used for a wide range, and holds fewer rows than the table.
  const wide = parseTopClients(new URLSearchParams({ since: '2026-12-01T18:17:13.250Z' }), NOW);
  assert.match(buildTopClients(wide).sql, /rollup_accept_clients_1h/);
  const [[rows]] = await store.read('SELECT count(*) FROM rollup_accept_series_1m');
  assert.ok(Number(rows) > 0 && Number(rows) < 3000, `${rows} series rollup rows`);
  const [[latencyRows]] = await store.read('SELECT count(*) FROM rollup_http_latency_1h');
  assert.ok(Number(latencyRows) > 0 && Number(latencyRows) < 3000, `${latencyRows} latency rollup rows`);
  await sameAnswers(store, 'after ingest');
  now = NOW + 17 * 60_000 + 13_250; // the cut falls at 19:17:13.250, inside an hour and a minute
  assert.ok(await store.enforceRetention() > 0);
  await sameAnswers(store, 'after retention');
  await store.close();
  const inst = await DuckDBInstance.create(path);
  const c = await inst.connect();
  await rebuildRollups(c);
  c.closeSync(); inst.closeSync();
  const again = await EventStore.open(path, { retentionMs: 0 });
  await sameAnswers(again, 'after a rebuild');
  await again.close();
  // A file from before the latency bucket column and its rollup: both are made on open.
  const old = await DuckDBInstance.create(path);
  const oc = await old.connect();
  await oc.run('DROP TABLE rollup_http_latency_1h');
  await oc.run('ALTER TABLE http DROP COLUMN latency_bucket');
  oc.closeSync(); old.closeSync();
  const migrated = await EventStore.open(path, { retentionMs: 0 });
  t.after(() => migrated.close());
  const [[nulls]] = await migrated.read('SELECT count(*) FROM http WHERE latency_bucket IS NULL AND latency_ms IS NOT NULL');
  assert.equal(Number(nulls), 0);
  await sameAnswers(migrated, 'after an older file was opened');
});

test('a range inside one bucket reads the rows alone', () => {
  const s = parseSeries(new URLSearchParams({ since: '2026-12-01T19:10:00Z', until: '2026-12-01T19:10:30Z' }), NOW);
  assert.equal(rollupSource(SERIES_ROLLUP, s, {}, '', ''), null);
  assert.doesNotMatch(buildSeries(s).sql, /rollup/);
});

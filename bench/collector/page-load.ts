// What the query benches share: the synthetic store they fill (N events over the last day: 90 %
// accept, 10 % http, plus hops and probe rows and one ingest_batches row per 5000 events, bulk
// loaded with INSERT ... SELECT, in DuckDB's and in ClickHouse's SQL: the same rows in both), the
// page's queries, and how they are timed.
import { DuckDBInstance } from '@duckdb/node-api';
import type { CollectorStore } from '../../src/collector/store-api.js';
import { EventStore } from '../../src/collector/store.js';
import { rebuildRollups } from '../../src/collector/rollups.js';
import { LATENCY_BUCKET_COLUMN, LATENCY_BUCKET_SQL } from '../../src/collector/queries/latency-bucket.js';

export const SPAN_S = 24 * 3600; // the events spread over the last day

/** An http latency as agents report it (whole microseconds), exponential with a mean of 8 ms over
 * a 0.2 ms floor: ~44k distinct values, as a real day has, which the percentiles must sort through. */
const latencyMs = (ln: 'ln' | 'log') => `round(0.2 - 8 * ${ln}(1 - ((i * 2654435761) % 4294967296) / 4294967296.0), 3)`;

/** Loads total events into a new DuckDB file at db (the store's own schema); returns seconds taken. */
export async function loadDuckDb(db: string, total: number, nowUs: bigint): Promise<number> {
  await (await EventStore.open(db, { retentionMs: 0 })).close();
  const inst = await DuckDBInstance.create(db);
  const c = await inst.connect();
  const nAccept = Math.floor(total * 0.9), nHttp = total - nAccept;
  const t0 = performance.now();
  // i-th event at now - span + i * span / n, 40 services, 5000 clients, 8 agents.
  const at = (n: number) => `make_timestamp(${nowUs}::BIGINT - ${SPAN_S * 1e6}::BIGINT + (i * ${Math.floor((SPAN_S * 1e6) / n)})::BIGINT)`;
  await c.run(`INSERT INTO accept SELECT i, 'gw-' || (i % 8), 'r-' || (i // 5000), ${at(nAccept)}, ${at(nAccept)}, ${at(nAccept)}, NULL,
    '10.0.' || (i % 40) || '.1:80', '10.1.0.' || (i % 7) || ':4' || (i % 1000), '192.0.' || ((i * 7919) % 5000 // 250) || '.' || ((i * 7919) % 250) || ':1024',
    NULL, true, NULL, 1, false, 64, i % 5, 1800, 100, 'nginx', '/system.slice/nginx.service', 4026531840, NULL FROM range(${nAccept}) t(i)`);
  await c.run(`INSERT INTO http SELECT ${nAccept} + i, 'gw-' || (i % 8), 'h-' || (i // 5000), ${at(nHttp)}, ${at(nHttp)}, ${at(nHttp)},
    '10.1.0.' || (i % 7) || ':5' || (i % 1000), '10.2.0.' || (i % 12) || ':' || (CASE WHEN i % 2 = 0 THEN 80 ELSE 8080 END), 'GET', 'svc.example', '/item/' || (i % 100),
    CASE WHEN i % 97 = 0 THEN 502 ELSE 200 END, 120, 5000, ${latencyMs('ln')}, NULL, NULL, CASE WHEN i % 500 = 0 THEN 'probe-' || (i // 500) ELSE NULL END, NULL, NULL, NULL FROM range(${nHttp}) t(i)`);
  await c.run(`UPDATE http SET ${LATENCY_BUCKET_COLUMN} = ${LATENCY_BUCKET_SQL}`);
  await c.run(`INSERT INTO hops SELECT ${total} + i, 'gw-' || (i % 8), 'hp-' || i, ${at(20_000)}, ${at(20_000)}, 'tcp4://t' || (i % 300) || ':80', '10.3.0.1:80', 4, 'open',
    60 + i % 4, 64, i % 4, 0.3, NULL, NULL, NULL, NULL, NULL FROM range(20000) t(i)`);
  await c.run(`INSERT INTO probe SELECT ${total} + 20000 + i, 'prober', 'pr-' || (i // 100), ${at(20_000)}, ${at(20_000)}, 'run' || (i // 200), 'run' || (i // 200) || '-' || (i % 200),
    i % 200, ${at(20_000)}, 200, 3.5, 'pod' || (i % 5), NULL, NULL FROM range(20000) t(i)`);
  await c.run(`INSERT INTO ingest_batches SELECT 'gw-' || (i % 8), 'r-' || i, 'r', i, 'accept', 5000, make_timestamp(${nowUs}::BIGINT - (i * 1000000)::BIGINT) FROM range(${Math.ceil(total / 5000)}) t(i)`);
  // Ingest keeps the rollups in step with every batch; a bulk load past it builds them at once.
  await rebuildRollups(c);
  await c.run('CHECKPOINT');
  const s = (performance.now() - t0) / 1000;
  c.closeSync(); inst.closeSync();
  return s;
}

/** The same rows into an open ClickHouse store (its tables made by ClickHouseStore.open); returns seconds taken. */
export async function loadClickHouse(store: CollectorStore, total: number, nowUs: bigint): Promise<number> {
  const nAccept = Math.floor(total * 0.9), nHttp = total - nAccept;
  const t0 = performance.now();
  const at = (n: number) => `fromUnixTimestamp64Micro(toInt64(${nowUs} - ${SPAN_S * 1e6} + i * ${Math.floor((SPAN_S * 1e6) / n)}))`;
  const range = (n: number) => `FROM (SELECT toInt64(number) AS i FROM numbers(${n}))`;
  await store.execute([
    { sql: `INSERT INTO accept SELECT i, 'gw-' || (i % 8), 'r-' || intDiv(i, 5000), ${at(nAccept)}, ${at(nAccept)}, ${at(nAccept)}, NULL,
    '10.0.' || (i % 40) || '.1:80', '10.1.0.' || (i % 7) || ':4' || (i % 1000), '192.0.' || intDiv((i * 7919) % 5000, 250) || '.' || ((i * 7919) % 250) || ':1024',
    NULL, true, NULL, 1, false, 64, i % 5, 1800, 100, 'nginx', '/system.slice/nginx.service', 4026531840, NULL ${range(nAccept)}` },
    { sql: `INSERT INTO http SELECT ${nAccept} + i, 'gw-' || (i % 8), 'h-' || intDiv(i, 5000), ${at(nHttp)}, ${at(nHttp)}, ${at(nHttp)},
    '10.1.0.' || (i % 7) || ':5' || (i % 1000), '10.2.0.' || (i % 12) || ':' || (CASE WHEN i % 2 = 0 THEN 80 ELSE 8080 END), 'GET', 'svc.example', '/item/' || (i % 100),
    CASE WHEN i % 97 = 0 THEN 502 ELSE 200 END, 120, 5000, ${latencyMs('log')}, NULL, NULL, CASE WHEN i % 500 = 0 THEN 'probe-' || intDiv(i, 500) ELSE NULL END, NULL, NULL ${range(nHttp)}` },
    { sql: `INSERT INTO hops SELECT ${total} + i, 'gw-' || (i % 8), 'hp-' || i, ${at(20_000)}, ${at(20_000)}, 'tcp4://t' || (i % 300) || ':80', '10.3.0.1:80', 4, 'open',
    60 + i % 4, 64, i % 4, 0.3, NULL, NULL, NULL, NULL, NULL ${range(20000)}` },
    { sql: `INSERT INTO probe SELECT ${total} + 20000 + i, 'prober', 'pr-' || intDiv(i, 100), ${at(20_000)}, ${at(20_000)}, 'run' || intDiv(i, 200), 'run' || intDiv(i, 200) || '-' || (i % 200),
    i % 200, ${at(20_000)}, 200, 3.5, 'pod' || (i % 5), NULL, NULL ${range(20000)}` },
    { sql: `INSERT INTO ingest_batches SELECT 'gw-' || (i % 8), 'r-' || i, 'r', i, 'accept', 5000, fromUnixTimestamp64Micro(toInt64(${nowUs} - i * 1000000)) ${range(Math.ceil(total / 5000))}` },
  ]);
  return (performance.now() - t0) / 1000;
}

/** What the page asks for a range of ageS seconds: each query route with the page's parameters. */
export function pageQueries(ageS: number): Record<string, [string, Record<string, string>]> {
  const since = `${ageS}s`;
  return {
    'clients/top': ['GET /v1/clients/top', { since, limit: '20' }],
    'connections/series': ['GET /v1/connections/series', { since, step: `${Math.max(10, Math.ceil(ageS / 120))}s` }],
    balance: ['GET /v1/balance', { since }],
    agents: ['GET /v1/agents', { since }],
    'hops/distribution': ['GET /v1/hops/distribution', { since }],
    probes: ['GET /v1/probes', { run: 'run7' }],
    events: ['GET /v1/events', { since, limit: '100' }],
    'events agent+service': ['GET /v1/events', { since, agent: 'gw-3', local: '10.0.3.1:80', limit: '100' }],
    'clients/top service': ['GET /v1/clients/top', { since, service: '10.0.3.1:80', limit: '20' }],
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

/** p50/p99 in ms of repeats runs, after one warm-up (the first run reads the data into memory). */
export async function timeIt(fn: () => Promise<unknown>, repeats: number): Promise<{ p50: number; p99: number }> {
  await fn();
  const xs: number[] = [];
  for (let i = 0; i < repeats; i++) { const t = performance.now(); await fn(); xs.push(performance.now() - t); }
  return { p50: pct(xs, 0.5), p99: pct(xs, 0.99) };
}

// The page's queries over a big store: N events (default 10 M: 90 % accept, 10 % http, plus hops
// and probe rows and one ingest_batches row per 5000 events) bulk-loaded with INSERT ... SELECT
// from range() (the fast path: generating 10 M rows through the ingest route would take minutes
// and is what ingest-rate.ts measures), then each query the page polls timed R times: p50/p99,
// and the ratio of p50 against the anchor, a plain SELECT count(*) FROM accept in the same run.
// Every query runs through the collector's own code (EventStore.query, the QUERY_ROUTES handlers),
// without HTTP: the figure is the store's, not the loopback's.
//   node dist/bench/collector/query-rate.js [events=10000000] [repeats=15]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseEventQuery } from '../../src/collector/query.js';
import { EventStore } from '../../src/collector/store.js';
import { QUERY_ROUTES } from '../../src/collector/routes.js';
import { AgentRuns } from '../../src/collector/agent-runs.js';
import { rebuildRollups } from '../../src/collector/rollups.js';

const total = Number(process.argv[2] ?? 10_000_000);
const repeats = Number(process.argv[3] ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'tcplens-bench-query-'));
const db = join(dir, 'q.duckdb');
const spanS = 24 * 3600; // the events spread over the last day
const nowUs = BigInt(Date.now()) * 1000n;

async function load(): Promise<number> {
  await (await EventStore.open(db, { retentionMs: 0 })).close(); // the store's own schema
  const inst = await DuckDBInstance.create(db);
  const c = await inst.connect();
  const nAccept = Math.floor(total * 0.9), nHttp = total - nAccept;
  const t0 = performance.now();
  // i-th event at now - span + i * span / n, 40 services, 5000 clients, 8 agents.
  const at = (n: number) => `make_timestamp(${nowUs}::BIGINT - ${spanS * 1e6}::BIGINT + (i * ${Math.floor((spanS * 1e6) / n)})::BIGINT)`;
  await c.run(`INSERT INTO accept SELECT i, 'gw-' || (i % 8), 'r-' || (i // 5000), ${at(nAccept)}, ${at(nAccept)}, ${at(nAccept)}, NULL,
    '10.0.' || (i % 40) || '.1:80', '10.1.0.' || (i % 7) || ':4' || (i % 1000), '192.0.' || ((i * 7919) % 5000 // 250) || '.' || ((i * 7919) % 250) || ':1024',
    NULL, true, NULL, 1, false, 64, i % 5, 1800, 100, 'nginx', '/system.slice/nginx.service', 4026531840, NULL FROM range(${nAccept}) t(i)`);
  await c.run(`INSERT INTO http SELECT ${nAccept} + i, 'gw-' || (i % 8), 'h-' || (i // 5000), ${at(nHttp)}, ${at(nHttp)}, ${at(nHttp)},
    '10.1.0.' || (i % 7) || ':5' || (i % 1000), '10.2.0.' || (i % 12) || ':' || (CASE WHEN i % 2 = 0 THEN 80 ELSE 8080 END), 'GET', 'svc.example', '/item/' || (i % 100),
    CASE WHEN i % 97 = 0 THEN 502 ELSE 200 END, 120, 5000, 0.5 + (i % 200) / 10.0, NULL, NULL, CASE WHEN i % 500 = 0 THEN 'probe-' || (i // 500) ELSE NULL END, NULL, NULL FROM range(${nHttp}) t(i)`);
  await c.run(`INSERT INTO hops SELECT ${total} + i, 'gw-' || (i % 8), 'hp-' || i, ${at(20_000)}, ${at(20_000)}, 'tcp4://t' || (i % 300) || ':80', '10.3.0.1:80', 4, 'open',
    60 + i % 4, 64, i % 4, 0.3, NULL, NULL, NULL, NULL, NULL FROM range(20000) t(i)`);
  await c.run(`INSERT INTO probe SELECT ${total} + 20000 + i, 'prober', 'pr-' || (i // 100), ${at(20_000)}, ${at(20_000)}, 'run' || (i // 200), 'run' || (i // 200) || '-' || (i % 200),
    i % 200, ${at(20_000)}, 200, 3.5, 'pod' || (i % 5), NULL, NULL FROM range(20000) t(i)`);
  await c.run(`INSERT INTO ingest_batches SELECT 'gw-' || (i % 8), 'r-' || i, 'r', i, 'accept', 5000, make_timestamp(${nowUs}::BIGINT - (i * 1000000)::BIGINT) FROM range(${Math.ceil(total / 5000)}) t(i)`);
  const loaded = performance.now();
  // Ingest keeps the rollups in step with every batch; a bulk load past it builds them at once.
  await rebuildRollups(c);
  console.log(`  rollups built from the loaded rows in ${((performance.now() - loaded) / 1000).toFixed(1)} s`);
  await c.run('CHECKPOINT');
  const s = (performance.now() - t0) / 1000;
  c.closeSync(); inst.closeSync();
  return s;
}

/** What the page asks for a range of ageS seconds: each query route with the page's parameters. */
function pageQueries(ageS: number): Record<string, [string, Record<string, string>]> {
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

async function time(fn: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  await fn(); // warm: the first run reads the file into DuckDB's buffer pool
  const xs: number[] = [];
  for (let i = 0; i < repeats; i++) { const t = performance.now(); await fn(); xs.push(performance.now() - t); }
  return { p50: pct(xs, 0.5), p99: pct(xs, 0.99) };
}

try {
  const loadS = await load();
  const inst = await DuckDBInstance.create(db);
  const c = await inst.connect();
  const store = await EventStore.open(db, { retentionMs: 0 });
  const anchor = await time(() => c.runAndReadAll('SELECT count(*) FROM accept'));
  console.log(`collector page queries over ${total} stored events (bulk load ${loadS.toFixed(1)} s), ${repeats} runs each after one warm-up`);
  console.log(`  anchor: SELECT count(*) FROM accept  p50 ${anchor.p50.toFixed(2)} ms`);
  const ctx = { store, agentRuns: await AgentRuns.open(store) };
  for (const [label, ageS] of [['15 min (the page default)', 900], ['24 h (everything)', spanS]] as const) {
    console.log(` range ${label}:`);
    for (const [k, [route, params]] of Object.entries(pageQueries(ageS))) {
      const search = new URLSearchParams(params);
      const run = route === 'GET /v1/events' ? () => store.query(parseEventQuery(search)) : () => QUERY_ROUTES[route](search, ctx);
      const r = await time(run);
      console.log(`  ${k.padEnd(22)} p50 ${r.p50.toFixed(1).padStart(7)} ms  p99 ${r.p99.toFixed(1).padStart(7)} ms  (${(r.p50 / anchor.p50).toFixed(1)} x anchor)`);
    }
  }
  await store.close();
  c.closeSync(); inst.closeSync();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

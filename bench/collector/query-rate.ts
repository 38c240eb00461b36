// The page's queries over a big store: N events (default 10 M: 90 % accept, 10 % http, plus hops
// and probe rows and one ingest_batches row per 5000 events) bulk-loaded with INSERT ... SELECT
// from range() (the fast path: generating 10 M rows through the ingest route would take minutes
// and is what ingest-rate.ts measures), then each query the page polls timed R times: p50/p99,
// and the ratio of p50 against the anchor, a plain SELECT count(*) FROM accept in the same run.
// Every query runs through the collector's own code (EventStore.query, the QUERY_ROUTES handlers),
// without HTTP: the figure is the store's, not the loopback's.
//   node dist/bench/collector/query-rate.js [events=10000000] [repeats=15]
import '../stdout-closed.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseEventQuery } from '../../src/collector/query.js';
import { EventStore } from '../../src/collector/store.js';
import { QUERY_ROUTES } from '../../src/collector/routes.js';
import { AgentRuns } from '../../src/collector/agent-runs.js';
import { loadDuckDb, pageQueries, SPAN_S, timeIt } from './page-load.js';

const total = Number(process.argv[2] ?? 10_000_000);
const repeats = Number(process.argv[3] ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'tcplens-bench-query-'));
const db = join(dir, 'q.duckdb');
const nowUs = BigInt(Date.now()) * 1000n;
const time = (fn: () => Promise<unknown>) => timeIt(fn, repeats);

try {
  const loadS = await loadDuckDb(db, total, nowUs);
  const inst = await DuckDBInstance.create(db);
  const c = await inst.connect();
  const store = await EventStore.open(db, { retentionMs: 0 });
  const anchor = await time(() => c.runAndReadAll('SELECT count(*) FROM accept'));
  console.log(`collector page queries over ${total} stored events (bulk load ${loadS.toFixed(1)} s), ${repeats} runs each after one warm-up`);
  console.log(`  anchor: SELECT count(*) FROM accept  p50 ${anchor.p50.toFixed(2)} ms`);
  const ctx = { store, agentRuns: await AgentRuns.open(store) };
  for (const [label, ageS] of [['15 min (the page default)', 900], ['24 h (everything)', SPAN_S]] as const) {
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

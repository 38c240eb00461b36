// The page's queries over N stored events (default 10 M), in ClickHouse against the embedded
// DuckDB, in one run: the same rows bulk-loaded into both (page-load.ts), then each query the page
// polls timed R times through the collector's own code (CollectorStore.query, the QUERY_ROUTES
// handlers, without HTTP) on each store. ClickHouse is chDB's (the engine in this process, reached
// through @clickhouse/client's client as clickhouse:// is, minus the HTTP hop); DuckDB's p50 is
// the anchor: the figure is ClickHouse's p50 as a ratio of it.
//   node dist/bench/collector/query-clickhouse.js [events=10000000] [repeats=15]
import '../stdout-closed.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentRuns } from '../../src/collector/agent-runs.js';
import { parseEventQuery } from '../../src/collector/query.js';
import { QUERY_ROUTES } from '../../src/collector/routes.js';
import type { CollectorStore } from '../../src/collector/store-api.js';
import { openStore } from '../../src/collector/store-url.js';
import { loadClickHouse, loadDuckDb, pageQueries, SPAN_S, timeIt } from './page-load.js';

const total = Number(process.argv[2] ?? 10_000_000);
const repeats = Number(process.argv[3] ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'tcplens-bench-ch-'));
const nowUs = BigInt(Date.now()) * 1000n;

async function timeAll(store: CollectorStore): Promise<Map<string, { p50: number; p99: number }>> {
  const out = new Map<string, { p50: number; p99: number }>();
  const ctx = { store, agentRuns: await AgentRuns.open(store) };
  for (const [label, ageS] of [['15m', 900], ['24h', SPAN_S]] as const) {
    for (const [k, [route, params]] of Object.entries(pageQueries(ageS))) {
      const search = new URLSearchParams(params);
      const run = route === 'GET /v1/events' ? () => store.query(parseEventQuery(search)) : () => QUERY_ROUTES[route](search, ctx);
      out.set(`${label} ${k}`, await timeIt(run, repeats));
    }
  }
  await ctx.agentRuns.close();
  return out;
}

try {
  const duckPath = join(dir, 'q.duckdb');
  const duckLoad = await loadDuckDb(duckPath, total, nowUs);
  const duck = await openStore({ kind: 'duckdb', path: duckPath }, { retentionMs: 0 });
  const duckTimes = await timeAll(duck);
  await duck.close();

  const ch = await openStore({ kind: 'chdb', path: join(dir, 'chdb'), database: 'tcplens' }, { retentionMs: 0 });
  const chLoad = await loadClickHouse(ch, total, nowUs);
  const chTimes = await timeAll(ch);
  const chBytes = (await ch.read('SELECT sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() AND active'))[0][0];
  await ch.close();

  console.log(`collector page queries over ${total} stored events, ${repeats} runs each after one warm-up; ClickHouse (chDB) p50 as a ratio of DuckDB's`);
  console.log(`  bulk load: DuckDB ${duckLoad.toFixed(1)} s, ClickHouse ${chLoad.toFixed(1)} s (${(Number(chBytes) / 2 ** 20).toFixed(0)} MiB on disk)`);
  console.log(`  ${'query'.padEnd(26)} ${'DuckDB p50'.padStart(11)} ${'ClickHouse p50'.padStart(15)} ${'p99'.padStart(9)}  ratio`);
  const ratios: number[] = [];
  for (const [k, d] of duckTimes) {
    const c = chTimes.get(k)!;
    ratios.push(c.p50 / d.p50);
    console.log(`  ${k.padEnd(26)} ${d.p50.toFixed(1).padStart(8)} ms ${c.p50.toFixed(1).padStart(12)} ms ${c.p99.toFixed(1).padStart(6)} ms  ${(c.p50 / d.p50).toFixed(2)} x`);
  }
  const geo = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
  console.log(`  geometric mean of the ratios: ${geo.toFixed(2)} x DuckDB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// GET /v1/balance: per tier, how the requests the http agents saw spread over backends, with the
// verdict; the shape of `tcplens http --balance --json`. Counting is done in the store, the
// percentiles as below (the same nearest rank as balance.ts's quantile), the spread statistics
// and the verdict by the same pure code the CLI uses.
//
// Tiers, by legSql's rule: a request in on the gateway port is tier 1, chooser "lb", backend the
// capture point (agent, plus /netns when the agent captured in several); any other request seen
// there is tier 2, chooser the capture point, backend the server address it went to.
import { spreadOfTallies, verdictOf, type ChooserSpread, type Expectation, type Verdict } from '../../capabilities/http/balance.js';
import { badQuery, QueryParams, type BuiltQuery } from '../query.js';
import { capturePointSql, COMMON_KEYS, commonFilter, commonWhere, DEFAULT_GATEWAY_PORT, HTTP_ERROR_SQL, legSql, num, portParam, whereClause, type CommonFilter, type Params } from './filters.js';
import { LATENCY_BUCKET_COLUMN, NO_LATENCY } from './latency-bucket.js';
import { TcplensError } from '../../errors.js';
import { LATENCY_ROLLUP, rollupSource } from '../rollups.js';
import type { CollectorStore } from '../store-api.js';
import { DUCKDB, type SqlDialect } from './dialect.js';

/** CHOOSER=w1,w2,...: weights over that chooser's backends in name order (as `http --balance --expect`). */
import type { ExpectSpec } from '../../capabilities/http/balance-summary.js';
export type { ExpectSpec };

export interface BalanceQuery extends CommonFilter { gatewayPort: number; expect: ExpectSpec }

export function parseExpect(specs: string[]): ExpectSpec {
  const out: ExpectSpec = new Map();
  for (const spec of specs) {
    const m = /^([A-Za-z0-9._:/[\]-]{1,128})=(\d{1,6}(?:\.\d{1,6})?(?:,\d{1,6}(?:\.\d{1,6})?){0,255})$/.exec(spec);
    const weights = m ? m[2].split(',').map(Number) : [];
    if (!m || weights.every((w) => w === 0)) badQuery(`expect=${spec.slice(0, 60)}: expected CHOOSER=W1,W2,...`, 'e.g. expect=lb=70,30 (weights over the backends in name order; not all zero)');
    if (out.has(m[1])) badQuery(`expect for ${m[1].slice(0, 60)} given twice`, 'one expect= per chooser');
    out.set(m[1], weights);
  }
  return out;
}

export function parseBalance(search: URLSearchParams, nowMs = Date.now()): BalanceQuery {
  const p = new QueryParams(search, [...COMMON_KEYS, 'gateway_port', 'expect'], nowMs, ['expect']);
  return { ...commonFilter(p), gatewayPort: portParam(p, 'gateway_port', DEFAULT_GATEWAY_PORT), expect: parseExpect(p.all('expect')) };
}

// Latency percentiles, exactly. ClickHouse sorts each backend's latencies in one pass
// (buildBalanceOnePass; 115-135 ms over a day of 10 M events here, about what the two reads below
// cost it with a logarithm per row, having no rollup). In DuckDB, quantile_disc doing the same
// spent ~100 ms of a ~140 ms query gathering and sorting a million values, so the DuckDB store
// sorts only a few thousand:
//  1. buildBalanceHistogram: per agent, extra keys (the capture point's netns), server and latency
//     bucket (latency-bucket.ts), the requests, latencies and errors: from the rollup for whole
//     hours and a GROUP BY over the rows for the rest; a few thousand rows;
//  2. percentileTargets: per tier/chooser/backend, the bucket holding each wanted rank and the
//     rank within it, from the cumulative counts;
//  3. buildBalanceValues: only the latencies in those buckets (a stored column, no logarithm per
//     row), from which pickPercentiles takes the one at that rank, after checking that it got as
//     many as step 1 counted.
// Bucket order is latency order, so this is balance.ts's nearest rank (ceil(q * n), from 1),
// exactly. Both reads see one state of the store (readTogether).
const QUANTILES = [0.5, 0.99] as const;
const TIER_KEYS = "CASE leg WHEN 'in' THEN 1 ELSE 2 END AS tier, CASE leg WHEN 'in' THEN 'lb' ELSE point END AS chooser, CASE leg WHEN 'in' THEN point ELSE server END AS backend";

/** Rows: tier, chooser, backend, requests, p50, p99, errors. */
export function buildBalanceOnePass(q: BalanceQuery, d: SqlDialect): BuiltQuery {
  const params: Params = { gateway_port: q.gatewayPort };
  const where = whereClause(commonWhere(q, params, d));
  const sql = `WITH x AS (SELECT ${capturePointSql(d)} AS point, ${legSql(d)} AS leg, server, latency_ms, ${HTTP_ERROR_SQL} AS bad FROM "http"${where}) ` +
    `SELECT ${TIER_KEYS}, count(*)::BIGINT, ${d.quantile('latency_ms', 0.5)}, ${d.quantile('latency_ms', 0.99)}, count(*) FILTER (WHERE bad)::BIGINT ` +
    'FROM x GROUP BY tier, chooser, backend ORDER BY tier, chooser, backend';
  return { sql, params };
}

/** Rows: point, server, leg, bucket, latencies, requests, errors. DuckDB. `rolled`: whether the
 * rollup was read (not for a range inside one hour, nor when told not to). */
export function buildBalanceHistogram(q: BalanceQuery, useRollups = true): BuiltQuery & { rolled: boolean } {
  const d = DUCKDB, params: Params = { gateway_port: q.gatewayPort };
  const rolled = useRollups && rollupSource(LATENCY_ROLLUP, q, params,
    `agent, coalesce(extra, '') AS extra, server, coalesce(${LATENCY_BUCKET_COLUMN}, ${NO_LATENCY}) AS b, 1 AS n, CASE WHEN latency_ms IS NULL THEN 0 ELSE 1 END AS nv, CASE WHEN ${HTTP_ERROR_SQL} THEN 1 ELSE 0 END AS errs`,
    'agent, extra, server, b, n, nv, errs');
  // Grouped on the raw columns, the capture point computed over the groups (per row, it cost more
  // than the grouping itself).
  const grouped = rolled
    ? `SELECT agent, nullif(extra, '') AS extra, server, b, sum(nv) AS nv, sum(n) AS n, sum(errs) AS errs FROM ${rolled} s GROUP BY agent, extra, server, b`
    : `SELECT agent, extra, server, ${LATENCY_BUCKET_COLUMN} AS b, ${LATENCY_ROLLUP.measures.map((m) => `${m.agg()} AS ${m.name}`).join(', ')} ` +
      `FROM "http"${whereClause(commonWhere(q, params, d))} GROUP BY agent, extra, server, b`;
  return { sql: `SELECT ${capturePointSql(d)} AS point, server, ${legSql(d)} AS leg, b, nv, n, errs FROM (${grouped}) g`, params, rolled: Boolean(rolled) };
}

/** Rows: point, server, leg, bucket, and its latencies as JSON text, [[latency, how many], ...]:
 * one string a group (turning each value into a JS value cost more than the query itself), and
 * each distinct latency once (a narrow spread can put much of a day in one bucket, but in few
 * distinct microsecond values); of `buckets` only. DuckDB. */
export function buildBalanceValues(q: BalanceQuery, buckets: number[]): BuiltQuery {
  const d = DUCKDB, params: Params = { gateway_port: q.gatewayPort };
  buckets.forEach((b, i) => { params[`b${i}`] = b; });
  const where = whereClause([...commonWhere(q, params, d), 'latency_ms IS NOT NULL', `${LATENCY_BUCKET_COLUMN} IN (${buckets.map((_, i) => `$b${i}`).join(', ')})`]);
  const counted = `SELECT agent, extra, server, ${LATENCY_BUCKET_COLUMN} AS b, latency_ms, count(*)::DOUBLE AS n FROM "http"${where} GROUP BY agent, extra, server, b, latency_ms`;
  const grouped = `SELECT agent, extra, server, b, to_json(list([latency_ms, n]))::VARCHAR AS v FROM (${counted}) c GROUP BY agent, extra, server, b`;
  return { sql: `SELECT ${capturePointSql(d)} AS point, server, ${legSql(d)} AS leg, b, v FROM (${grouped}) g`, params };
}

interface Backend { tier: 1 | 2; chooser: string; name: string; requests: number; errors: number; latencies: Map<number, number>; p: (number | null)[] }
/** Where a wanted rank is: the bucket, and the rank within it (from 1). */
interface Target { backend: Backend; quantile: number; rank: number }
export interface PercentilePlan {
  backends: Map<string, Backend>;
  /** per backend and bucket: the bucket, the ranks wanted there, and how many latencies step 1 counted in it */
  targets: Map<string, { bucket: number; count: number; wanted: Target[] }>;
  buckets: number[];
}

/** legSql's rule applied: tier 1 is the balancer's choice of capture point, tier 2 the point's choice of server. */
const tierOf = (point: string, server: string, leg: unknown) => (leg === 'in' ? { tier: 1 as const, chooser: 'lb', name: point } : { tier: 2 as const, chooser: point, name: server });
const backendKey = (b: { tier: number; chooser: string; name: string }) => `${b.tier}\u0000${b.chooser}\u0000${b.name}`;
const targetKey = (backend: string, bucket: number) => `${backend}\u0000${bucket}`;

export function percentileTargets(histogram: unknown[][]): PercentilePlan {
  const backends = new Map<string, Backend>();
  for (const [point, server, leg, b, latencies, n, errors] of histogram) {
    const t = tierOf(point as string, server as string, leg);
    const key = backendKey(t);
    let be = backends.get(key);
    if (!be) backends.set(key, be = { ...t, requests: 0, errors: 0, latencies: new Map(), p: QUANTILES.map(() => null) });
    be.requests += Number(n); be.errors += Number(errors);
    if (Number(latencies) > 0) be.latencies.set(Number(b), (be.latencies.get(Number(b)) ?? 0) + Number(latencies));
  }
  const targets: PercentilePlan['targets'] = new Map();
  for (const [key, be] of backends) {
    const buckets = [...be.latencies].sort((x, y) => x[0] - y[0]);
    const total = buckets.reduce((s, [, n]) => s + n, 0);
    for (const [qi, quantile] of total ? QUANTILES.entries() : []) {
      const want = Math.min(total, Math.max(1, Math.ceil(quantile * total)));
      let below = 0;
      for (const [bucket, n] of buckets) {
        if (below + n >= want) {
          const tk = targetKey(key, bucket);
          if (!targets.has(tk)) targets.set(tk, { bucket, count: n, wanted: [] });
          targets.get(tk)!.wanted.push({ backend: be, quantile: qi, rank: want - below });
          break;
        }
        below += n;
      }
    }
  }
  return { backends, targets, buckets: [...new Set([...targets.values()].map((t) => t.bucket))].sort((x, y) => x - y) };
}

/** The plan's percentiles from the latencies of its buckets, as rows shapeBalance reads; null when
 * a bucket holds other than the latencies the plan counted in it. */
export function pickPercentiles(plan: PercentilePlan, values: unknown[][]): unknown[][] | null {
  const inBucket = new Map<string, [number, number][]>();
  for (const [point, server, leg, b, v] of values) {
    const tk = targetKey(backendKey(tierOf(point as string, server as string, leg)), Number(b));
    if (!plan.targets.has(tk)) continue;
    const counted = JSON.parse(v as string) as [number, number][];
    const have = inBucket.get(tk);
    if (have) have.push(...counted); else inBucket.set(tk, counted);
  }
  for (const [tk, { count, wanted }] of plan.targets) {
    const counted = (inBucket.get(tk) ?? []).sort((x, y) => x[0] - y[0]);
    if (counted.reduce((s, [, n]) => s + n, 0) !== count) return null;
    for (const t of wanted) {
      let seen = 0;
      const at = counted.find(([, n]) => (seen += n) >= t.rank);
      t.backend.p[t.quantile] = at![0];
    }
  }
  return [...plan.backends.values()].map((b) => [b.tier, b.chooser, b.name, b.requests, b.p[0], b.p[1], b.errors]);
}

/** The balance rows (tier, chooser, backend, requests, p50, p99, errors) from a store. */
export async function balanceRows(q: BalanceQuery, store: Pick<CollectorStore, 'dialect' | 'readTogether'>): Promise<unknown[][]> {
  return store.readTogether(async (read) => {
    if (store.dialect.name !== 'duckdb') {
      const b = buildBalanceOnePass(q, store.dialect);
      return read(b.sql, b.params);
    }
    const percentiles = async (useRollups: boolean) => {
      const h = buildBalanceHistogram(q, useRollups);
      const plan = percentileTargets(await read(h.sql, h.params));
      const v = plan.buckets.length ? buildBalanceValues(q, plan.buckets) : null;
      return { rolled: h.rolled, rows: pickPercentiles(plan, v ? await read(v.sql, v.params) : []) };
    };
    const first = await percentiles(true);
    if (first.rows) return first.rows;
    // The rollup sums the stored column in the rows' own transactions, so this should not happen;
    // if it does, the rows alone answer, and the operator hears of it.
    if (first.rolled) {
      process.stderr.write('tcplens: collector: the http latency rollup disagrees with the stored rows; /v1/balance answered from the rows\n');
      const again = await percentiles(false);
      if (again.rows) return again.rows;
    }
    throw new TcplensError('TCPLENS_ERR_STORE', 'balance: the latency buckets disagree with the stored rows', 'a bug in tcplens: please report it (the other routes are not affected)');
  });
}

export function shapeBalance(q: BalanceQuery, rows: unknown[][]): { tiers: ChooserSpread[]; verdict: Verdict } {
  const groups = new Map<string, { tier: 1 | 2; chooser: string; tallies: Parameters<typeof spreadOfTallies>[2] }>();
  let samples = 0;
  for (const [tier, chooser, name, n, p50, p99, errors] of rows) {
    const key = `${tier}\u0000${chooser}`;
    if (!groups.has(key)) groups.set(key, { tier: Number(tier) as 1 | 2, chooser: chooser as string, tallies: [] });
    groups.get(key)!.tallies.push({ name: name as string, requests: Number(n), p50_ms: num(p50), p99_ms: num(p99), errors: Number(errors) });
    samples += Number(n);
  }
  const expectation: Expectation = new Map();
  for (const [chooser, weights] of q.expect) {
    const g = [...groups.values()].find((x) => x.chooser === chooser);
    if (!g) badQuery(`expect=${chooser.slice(0, 60)}=...: no chooser of that name in the data`, `choosers: ${[...new Set([...groups.values()].map((x) => x.chooser))].join(', ').slice(0, 200) || 'none yet'}`);
    const names = g.tallies.map((t) => t.name).sort();
    if (names.length !== weights.length) badQuery(`expect=${chooser.slice(0, 60)}=...: ${weights.length} weights for ${names.length} backends`, `its backends in name order: ${names.join(', ').slice(0, 200)}`);
    expectation.set(chooser, new Map(names.map((n, i) => [n, weights[i]])));
  }
  const tiers = [...groups.values()].map((g) => spreadOfTallies(g.tier, g.chooser, g.tallies, expectation.get(g.chooser)))
    .sort((a, b) => a.tier - b.tier || a.chooser.localeCompare(b.chooser));
  return { tiers, verdict: verdictOf(tiers, samples) };
}

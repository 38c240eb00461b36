// GET /v1/balance: per tier, how the requests the http agents saw spread over backends, with the
// verdict; the shape of `tcplens http --balance --json`. Counting and percentiles are done in
// DuckDB (quantile_disc is the same nearest rank as balance.ts's quantile), the spread statistics
// and the verdict by the same pure code the CLI uses.
//
// Tiers, by legSql's rule: a request in on the gateway port is tier 1, chooser "lb", backend the
// capture point (agent, plus /netns when the agent captured in several); any other request seen
// there is tier 2, chooser the capture point, backend the server address it went to.
import { spreadOfTallies, verdictOf, type ChooserSpread, type Expectation, type Verdict } from '../../capabilities/http/balance.js';
import { badQuery, QueryParams, type BuiltQuery } from '../query.js';
import { capturePointSql, COMMON_KEYS, commonFilter, commonWhere, DEFAULT_GATEWAY_PORT, legSql, num, portParam, whereClause, type CommonFilter, type Params } from './filters.js';
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

export function buildBalance(q: BalanceQuery, d: SqlDialect = DUCKDB): BuiltQuery {
  const params: Params = { gateway_port: q.gatewayPort };
  const where = whereClause(commonWhere(q, params, d));
  const sql = `WITH x AS (SELECT ${capturePointSql(d)} AS point, ${legSql(d)} AS leg, server, latency_ms, (error IS NOT NULL OR status >= 500) AS bad FROM "http"${where}) ` +
    "SELECT CASE leg WHEN 'in' THEN 1 ELSE 2 END AS tier, CASE leg WHEN 'in' THEN 'lb' ELSE point END AS chooser, CASE leg WHEN 'in' THEN point ELSE server END AS backend, " +
    `count(*)::BIGINT, ${d.quantile('latency_ms', 0.5)}, ${d.quantile('latency_ms', 0.99)}, count(*) FILTER (WHERE bad)::BIGINT ` +
    'FROM x GROUP BY tier, chooser, backend ORDER BY tier, chooser, backend';
  return { sql, params };
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

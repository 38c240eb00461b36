// GET /v1/hops/distribution: how far away the targets of hops agents are. One distance per agent
// and target address (its latest measurement: a route can change), then how many are how far.
import { QueryParams, type BuiltQuery } from '../query.js';
import { COMMON_KEYS, commonFilter, commonWhere, whereClause, type CommonFilter, type Params } from './filters.js';
import { DUCKDB, type SqlDialect } from './dialect.js';

export type HopsQuery = CommonFilter;

export function parseHops(search: URLSearchParams, nowMs = Date.now()): HopsQuery {
  return commonFilter(new QueryParams(search, COMMON_KEYS, nowMs));
}

export function buildHops(q: HopsQuery, d: SqlDialect = DUCKDB): BuiltQuery {
  const params: Params = {};
  const latest = `SELECT ${d.argMax('"hops"', 'id')} AS h FROM "hops"${whereClause(commonWhere(q, params, d))} GROUP BY agent, coalesce(address, target)`;
  return { sql: `SELECT h, count(*)::BIGINT FROM (${latest}) GROUP BY h ORDER BY h NULLS LAST`, params };
}

/** targets counts every agent and address measured, also those without an answer (no distance). */
export function shapeHops(rows: unknown[][]) {
  const buckets = rows.filter(([h]) => h !== null).map(([h, n]) => ({ hops: Number(h), count: Number(n) }));
  return { buckets, targets: rows.reduce((s, [, n]) => s + Number(n), 0) };
}

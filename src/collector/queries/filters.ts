// What every query route shares: since/until/agent filters as bound SQL conditions, and the
// expressions that turn a stored record into the words the routes answer in. Identifiers and SQL
// text are fixed here; user values only ever travel as $parameters.
import { badQuery, type BuiltQuery, type QueryParams } from '../query.js';
import { DUCKDB, type SqlDialect } from './dialect.js';

export type Params = BuiltQuery['params'];

/** The filters every route takes. */
export interface CommonFilter { sinceUs: bigint | null; untilUs: bigint | null; agent: string | null }

export const COMMON_KEYS = ['since', 'until', 'agent'] as const;

export function commonFilter(p: QueryParams): CommonFilter {
  return { sinceUs: p.time('since'), untilUs: p.time('until'), agent: p.get('agent') };
}

/** WHERE conditions (joined with AND by the caller) for the common filters on a time column. */
export function commonWhere(f: CommonFilter, params: Params, d: SqlDialect = DUCKDB, timeColumn = 'ts', agentColumn = 'agent'): string[] {
  const where: string[] = [];
  if (f.agent !== null) { where.push(`${agentColumn} = $agent`); params.agent = f.agent; }
  if (f.sinceUs !== null) { where.push(`${timeColumn} >= ${d.timestamp('$since')}`); params.since = f.sinceUs; }
  if (f.untilUs !== null) { where.push(`${timeColumn} < ${d.timestamp('$until')}`); params.until = f.untilUs; }
  return where;
}

export function whereClause(where: string[]): string {
  return where.length ? ` WHERE ${where.join(' AND ')}` : '';
}

/** A TCP port given as a query parameter. */
export function portParam(p: QueryParams, k: string, dflt: number): number {
  const v = p.get(k);
  if (v === null) return dflt;
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) badQuery(`${k}=${v.slice(0, 20)}: not a port`, `e.g. ${k}=${dflt}`);
  return Number(v);
}

/**
 * Where an http exchange was seen: the agent, and the network namespace when the agent captured
 * in several (`tcplens http --netns`, which tags each exchange with `netns`: a name, or an object
 * with one). Not a schema column, so it is read from the record's extra keys.
 */
export const capturePointSql = (d: SqlDialect) => `(agent || coalesce('/' || ${d.netns}, ''))`;

/**
 * The leg of a gateway an http exchange is on, by one documented rule: a request TO the gateway
 * port ($gateway_port, default 80: the gateway service's port, a NodePort on a real node) came in
 * from the balancer ('in', tier 1); any other request seen there is the gateway's own, out to a pod
 * ('out', tier 2).
 */
export const legSql = (d: SqlDialect) => `(CASE WHEN ${d.endsWith('server', `':' || ${d.text('$gateway_port')}`)} THEN 'in' ELSE 'out' END)`;
/** An http exchange that failed: no answer, or a 5xx one. */
export const HTTP_ERROR_SQL = '(error IS NOT NULL OR status >= 500)';
export { DEFAULT_GATEWAY_PORT } from '../../capabilities/http/balance-summary.js';

/** An ip:port or [v6]:port (formatEndpoint's forms) -> the address alone, brackets off. String
 * functions, not a regular expression: this runs on every row of a top-clients query. */
export function addressOnlySql(expr: string, d: SqlDialect = DUCKDB): string {
  return `(CASE WHEN ${d.startsWith(expr, "'['")} THEN ${d.splitPart(`substr(${expr}, 2)`, "']'", 1)} ELSE ${d.splitPart(expr, "':'", 1)} END)`;
}

export const isoOf = (ms: unknown): string | null => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());
export const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

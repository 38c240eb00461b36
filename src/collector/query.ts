// GET /v1/events: query string -> a checked EventQuery -> parameterised SQL per capability table.
// Every user value travels as a bound parameter; identifiers come only from the schema.
import { TcplensError } from '../errors.js';
import { CAPABILITIES, capabilitySchema, ident, type CapabilityName, type CapabilitySchema, type QueryFilter } from './schema.js';
import { DUCKDB, type SqlDialect } from './queries/dialect.js';

export interface EventQuery {
  capability: CapabilityName | null;
  agent: string | null;
  local: string | null;
  client: string | null;
  /** microseconds since the epoch, inclusive */
  sinceUs: bigint | null;
  /** microseconds since the epoch, exclusive */
  untilUs: bigint | null;
  limit: number;
}

export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 100_000;
const KNOWN = ['capability', 'agent', 'local', 'client', 'since', 'until', 'limit'];
const MAX_VALUE = 256;

export function badQuery(message: string, hint: string): never {
  throw new TcplensError('TCPLENS_ERR_BAD_QUERY', message, hint);
}

/** "2026-12-01T21:00:00Z" (any Date.parse-able ISO time), epoch seconds (up to 12 digits), epoch
 * milliseconds (13 digits, what a browser's Date.now() gives), or "15m" meaning that long ago. */
export function parseTimeParam(name: string, value: string, nowMs: number): bigint {
  const rel = /^(\d+)(s|m|h|d)$/.exec(value);
  if (rel) return BigInt(nowMs - Number(rel[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[rel[2] as 's']) * 1000n;
  if (/^\d{1,12}(\.\d{1,6})?$/.test(value)) return BigInt(Math.round(Number(value) * 1e6));
  if (/^\d{13}$/.test(value)) return BigInt(value) * 1000n;
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$/.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return BigInt(ms) * 1000n;
  }
  return badQuery(`${name}=${value.slice(0, 60)}: not a time`, `give an ISO time (2026-12-01T21:00:00Z), epoch seconds, or an age such as ${name}=15m`);
}

/** A query string checked against the parameters a route knows: each at most once, none too long. */
export class QueryParams {
  constructor(private readonly params: URLSearchParams, known: readonly string[], readonly nowMs: number, repeatable: readonly string[] = []) {
    for (const k of new Set(params.keys())) {
      if (!known.includes(k)) badQuery(`unknown query parameter '${k.slice(0, 40)}'`, `parameters: ${known.join(', ')}`);
      if (params.getAll(k).length > 1 && !repeatable.includes(k)) badQuery(`'${k.slice(0, 40)}' given more than once`, 'give each parameter at most once');
    }
  }

  /** The value, or null when absent or empty. */
  get(k: string): string | null {
    return this.all(k)[0] ?? null;
  }

  all(k: string): string[] {
    const vs = this.params.getAll(k).filter((v) => v !== '');
    for (const v of vs) if (v.length > MAX_VALUE) badQuery(`${k}: longer than ${MAX_VALUE} characters`, 'filters match whole values such as 10.0.0.1:80');
    return vs;
  }

  /** A whole number from 1 to max, or the default. */
  limit(k: string, dflt: number, max: number): number {
    const text = this.get(k);
    if (text === null) return dflt;
    if (!/^\d{1,7}$/.test(text) || Number(text) < 1 || Number(text) > max) {
      badQuery(`${k}=${text.slice(0, 20)}: expected a whole number from 1 to ${max}`, `e.g. ${k}=${dflt}`);
    }
    return Number(text);
  }

  /** since/until as microseconds since the epoch. */
  time(k: 'since' | 'until'): bigint | null {
    const v = this.get(k);
    return v === null ? null : parseTimeParam(k, v, this.nowMs);
  }
}

export function parseEventQuery(params: URLSearchParams, nowMs = Date.now()): EventQuery {
  const p = new QueryParams(params, KNOWN, nowMs);
  const cap = p.get('capability');
  const q: EventQuery = {
    capability: cap === null ? null : capabilitySchema(cap).name,
    agent: p.get('agent'),
    local: p.get('local'),
    client: p.get('client'),
    sinceUs: p.time('since'),
    untilUs: p.time('until'),
    limit: p.limit('limit', DEFAULT_LIMIT, MAX_LIMIT),
  };
  if (q.capability) {
    const schema = CAPABILITIES[q.capability];
    for (const f of ['local', 'client'] as const) {
      if (q[f] !== null && !schema.filters[f]) {
        badQuery(`${f}= does not apply to ${q.capability} records`, `${f}= filters ${Object.values(CAPABILITIES).filter((s) => s.filters[f]).map((s) => s.name).join(', ')}`);
      }
    }
  }
  return q;
}

export interface BuiltQuery { sql: string; params: Record<string, string | number | bigint> }

/** The column list a stored row is read back with (times as epoch ms, to rebuild ISO strings). */
export function selectColumns(schema: CapabilitySchema, d: SqlDialect = DUCKDB): string {
  const cols = schema.fields.map((f) => (f.type === 'time' ? d.epochMs(ident(f.name)) : ident(f.name)));
  return ['id', 'agent', ...cols, 'extra'].join(', ');
}

/** SQL for one capability's table, or null when a filter cannot match there (that table is skipped). */
export function buildEventSelect(schema: CapabilitySchema, q: EventQuery, d: SqlDialect = DUCKDB): BuiltQuery | null {
  const where: string[] = [];
  const params: BuiltQuery['params'] = {};
  if (q.agent !== null) { where.push('agent = $agent'); params.agent = q.agent; }
  for (const f of ['local', 'client'] as QueryFilter[]) {
    const v = q[f];
    if (v === null) continue;
    const col = schema.filters[f];
    if (!col) return null;
    where.push(`${ident(col)} = $${f}`);
    params[f] = v;
  }
  if (q.sinceUs !== null) { where.push(`ts >= ${d.timestamp('$since')}`); params.since = q.sinceUs; }
  if (q.untilUs !== null) { where.push(`ts < ${d.timestamp('$until')}`); params.until = q.untilUs; }
  params.limit = q.limit;
  const sql = `SELECT ${selectColumns(schema, d)} FROM ${ident(schema.name)}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT $limit`;
  return { sql, params };
}

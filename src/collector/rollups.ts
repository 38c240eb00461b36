// Rollups: accept connections pre-summed per time bucket, so the page's wide-range queries read a
// few hundred thousand summed rows instead of every stored event. They are maintained in the very
// transaction that stores a batch (store.ts), from the rows just appended, so they are exactly as
// durable and as deduplicated as the rows; retention trims them in its own transaction and
// recomputes the one bucket it cuts through, so a rollup always sums exactly the stored rows.
//
// A query reads whole buckets inside its range from the rollup and the ragged ends (since .. the
// first bucket boundary, the last boundary .. until) from the raw table, and sums both: the answer
// is the raw table's answer, only cheaper (test/unit/collector-rollups.test.ts checks that).
import type { DuckDBConnection } from '@duckdb/node-api';
import { CLIENT_SQL, CONNECTIONS_SQL } from './queries/connections.js';
import type { CommonFilter, Params } from './queries/filters.js';

export interface Rollup {
  table: string;
  bucketUs: number;
  /** key columns: name and the expression over an accept row */
  keys: [string, string][];
  /** measure columns: name, type, the aggregate over accept rows, and how two partial sums merge */
  measures: { name: string; type: string; agg: () => string; merge: string }[];
}

const HOUR_US = 3600e6, MINUTE_US = 60e6;

/** Top clients: per hour, agent, service and real client address. */
export const CLIENTS_ROLLUP: Rollup = {
  table: 'rollup_accept_clients_1h', bucketUs: HOUR_US,
  keys: [['agent', 'agent'], ['local', '"local"'], ['client', 'CLIENT']],
  measures: [
    { name: 'connections', type: 'BIGINT NOT NULL', agg: () => CONNECTIONS_SQL, merge: 'connections + excluded.connections' },
    { name: 'last', type: 'TIMESTAMP', agg: () => 'max(coalesce("last", "time"))', merge: 'greatest("last", excluded."last")' },
  ],
};

/** Connections over time: per minute, agent and service. */
export const SERIES_ROLLUP: Rollup = {
  table: 'rollup_accept_series_1m', bucketUs: MINUTE_US,
  keys: [['agent', 'agent'], ['local', '"local"']],
  measures: [{ name: 'connections', type: 'BIGINT NOT NULL', agg: () => CONNECTIONS_SQL, merge: 'connections + excluded.connections' }],
};

export const ROLLUPS = [CLIENTS_ROLLUP, SERIES_ROLLUP];

const q = (name: string) => `"${name}"`;
const keyExpr = (e: string) => (e === 'CLIENT' ? CLIENT_SQL : e);
/** The bucket a time falls in: an exact floor in whole microseconds (no float, also before 1970). */
const bucketOf = (r: Rollup, col: string) => `make_timestamp(epoch_us(${col}) - (((epoch_us(${col}) % ${r.bucketUs}) + ${r.bucketUs}) % ${r.bucketUs}))`;

export function createRollupSql(r: Rollup): string {
  const cols = [`bucket TIMESTAMP NOT NULL`, ...r.keys.map(([k]) => `${q(k)} VARCHAR NOT NULL`), ...r.measures.map((m) => `${q(m.name)} ${m.type}`)];
  return `CREATE TABLE IF NOT EXISTS ${r.table} (${cols.join(', ')}, PRIMARY KEY (bucket, ${r.keys.map(([k]) => q(k)).join(', ')}))`;
}

/** Adds the accept rows matching `where` (SQL over accept) into the rollup. */
function addRowsSql(r: Rollup, where: string): string {
  const select = [bucketOf(r, 'ts'), ...r.keys.map(([, e]) => keyExpr(e)), ...r.measures.map((m) => m.agg())].join(', ');
  const groups = Array.from({ length: r.keys.length + 1 }, (_, i) => i + 1).join(', ');
  return `INSERT INTO ${r.table} SELECT ${select} FROM "accept" WHERE ${where} GROUP BY ${groups} ` +
    `ON CONFLICT DO UPDATE SET ${r.measures.map((m) => `${q(m.name)} = ${m.merge}`).join(', ')}`;
}

/** In the ingest transaction: the accept rows with ids firstId.. (the ones this group appended). */
export async function addAcceptRows(conn: DuckDBConnection, firstId: number, nextId: number): Promise<void> {
  for (const r of ROLLUPS) await conn.run(addRowsSql(r, `id >= $first AND id < $next`), { first: BigInt(firstId), next: BigInt(nextId) });
}

/** Creates missing rollup tables, filling a new one from what is stored already (an older file). */
export async function ensureRollups(conn: DuckDBConnection): Promise<void> {
  const have = new Set((await conn.runAndReadAll('SELECT table_name FROM duckdb_tables()')).getRows().map(([t]) => t as string));
  for (const r of ROLLUPS) {
    if (have.has(r.table)) continue;
    await conn.run(createRollupSql(r));
    await conn.run(addRowsSql(r, 'true'));
  }
}

/** Drops and refills every rollup from the stored rows (after a bulk load that bypassed ingest). */
export async function rebuildRollups(conn: DuckDBConnection): Promise<void> {
  for (const r of ROLLUPS) {
    await conn.run(`DELETE FROM ${r.table}`);
    await conn.run(addRowsSql(r, 'true'));
  }
}

/** In the retention transaction, after accept rows older than cutUs went: buckets wholly before
 * the cut go, and the bucket the cut falls in is summed again from the rows left in it. */
export async function trimRollups(conn: DuckDBConnection, cutUs: bigint): Promise<void> {
  for (const r of ROLLUPS) {
    const b = BigInt(r.bucketUs);
    const start = cutUs - (((cutUs % b) + b) % b);
    await conn.run(`DELETE FROM ${r.table} WHERE bucket < make_timestamp($end::BIGINT)`, { end: start + b });
    await conn.run(addRowsSql(r, 'ts >= make_timestamp($start::BIGINT) AND ts < make_timestamp($end::BIGINT)'), { start, end: start + b });
  }
}

/**
 * The FROM source for a query over accept rows: `rows` (SELECT list over raw accept rows, with
 * `time`-free columns named as the rollup's) for the ragged ends, `summed` (the same columns over
 * the rollup) for the whole buckets, all behind the common filters and `extra` conditions (over
 * columns both have: agent, "local"). Null when the range is within one bucket (raw alone is as cheap).
 */
export function rollupSource(r: Rollup, f: CommonFilter, params: Params, rows: string, summed: string, extra: string[] = []): string | null {
  const b = BigInt(r.bucketUs);
  const ceil = (us: bigint) => us + ((b - (((us % b) + b) % b)) % b);
  const floor = (us: bigint) => us - (((us % b) + b) % b);
  const from = f.sinceUs === null ? null : ceil(f.sinceUs);
  const to = f.untilUs === null ? null : floor(f.untilUs);
  if (from !== null && to !== null && from >= to) return null;
  const common = [...extra];
  if (f.agent !== null) { common.push('agent = $agent'); params.agent = f.agent; }
  const and = (w: string[]) => [...common, ...w].join(' AND ') || 'true';
  const parts: string[] = [];
  const inRollup: string[] = [];
  if (from !== null) { inRollup.push('bucket >= make_timestamp($rollup_from::BIGINT)'); params.rollup_from = from; }
  if (to !== null) { inRollup.push('bucket < make_timestamp($rollup_to::BIGINT)'); params.rollup_to = to; }
  parts.push(`SELECT ${summed} FROM ${r.table} WHERE ${and(inRollup)}`);
  if (f.sinceUs !== null && from! > f.sinceUs) {
    params.since = f.sinceUs;
    parts.push(`SELECT ${rows} FROM "accept" WHERE ${and(['ts >= make_timestamp($since::BIGINT)', 'ts < make_timestamp($rollup_from::BIGINT)'])}`);
  }
  if (f.untilUs !== null && to! < f.untilUs) {
    params.until = f.untilUs;
    parts.push(`SELECT ${rows} FROM "accept" WHERE ${and(['ts >= make_timestamp($rollup_to::BIGINT)', 'ts < make_timestamp($until::BIGINT)'])}`);
  }
  return `(${parts.join(' UNION ALL ')})`;
}

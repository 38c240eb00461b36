// Rollups: accept connections and http latency buckets pre-summed per time bucket, so the page's
// wide-range queries read a few hundred thousand summed rows instead of every stored event. They
// are maintained in the very transaction that stores a batch (store.ts), so they are exactly as
// durable and as deduplicated as the rows; retention trims them in its own transaction and
// recomputes the one bucket it cuts through, so a rollup always sums exactly the stored rows.
//
// At ingest the group's rows are summed here in JS, from the values already in memory, and only
// the sums go to DuckDB (appended to a temp table, then merged with one INSERT .. ON CONFLICT):
// the same sums done by DuckDB over the just-appended rows cost ~5 us an event, half the ingest
// rate. Backfill, rebuild and retention use the SQL form; the tests check both against the rows.
//
// A query reads whole buckets inside its range from the rollup and the ragged ends (since .. the
// first bucket boundary, the last boundary .. until) from the raw table, and sums both: the answer
// is the raw table's answer, only cheaper (test/unit/collector-rollups.test.ts checks that).
import { DuckDBTimestampValue, type DuckDBConnection } from '@duckdb/node-api';
import { CAPABILITIES, type EventRow } from './schema.js';
import { clientSql, CONNECTIONS_SQL } from './queries/connections.js';
import type { CommonFilter, Params } from './queries/filters.js';
import { DUCKDB } from './queries/dialect.js';
import { LATENCY_BUCKET_COLUMN, latencyBucket, NO_LATENCY } from './queries/latency-bucket.js';
import { HTTP_ERROR_SQL } from './queries/filters.js';

export interface Rollup {
  table: string;
  /** the table summed */
  source: 'accept' | 'http';
  bucketUs: number;
  /** key columns: name and the expression over a source row (VARCHAR unless a type is given) */
  keys: ([string, string] | [string, string, string])[];
  /** measure columns: name, type, the aggregate over source rows, and how two partial sums merge */
  measures: { name: string; type: string; agg: () => string; merge: string }[];
}

const HOUR_US = 3600e6, MINUTE_US = 60e6;

/** Top clients: per hour, agent, service and real client address. */
export const CLIENTS_ROLLUP: Rollup = {
  table: 'rollup_accept_clients_1h', source: 'accept', bucketUs: HOUR_US,
  keys: [['agent', 'agent'], ['local', '"local"'], ['client', 'CLIENT']],
  measures: [
    { name: 'connections', type: 'BIGINT NOT NULL', agg: () => CONNECTIONS_SQL, merge: 'connections + excluded.connections' },
    { name: 'last', type: 'TIMESTAMP', agg: () => 'max(coalesce("last", "time"))', merge: 'greatest("last", excluded."last")' },
  ],
};

/** Connections over time: per minute, agent and service. */
export const SERIES_ROLLUP: Rollup = {
  table: 'rollup_accept_series_1m', source: 'accept', bucketUs: MINUTE_US,
  keys: [['agent', 'agent'], ['local', '"local"']],
  measures: [{ name: 'connections', type: 'BIGINT NOT NULL', agg: () => CONNECTIONS_SQL, merge: 'connections + excluded.connections' }],
};

/** Balance: per hour, agent, extra keys (the capture point's netns), server and latency bucket
 * (queries/balance.ts), the requests, those with a latency, and the errors. */
export const LATENCY_ROLLUP: Rollup = {
  table: 'rollup_http_latency_1h', source: 'http', bucketUs: HOUR_US,
  keys: [['agent', 'agent'], ['extra', "coalesce(extra, '')"], ['server', 'server'], ['b', `coalesce(${LATENCY_BUCKET_COLUMN}, ${NO_LATENCY})`, 'INTEGER']],
  measures: [
    { name: 'n', type: 'BIGINT NOT NULL', agg: () => 'count(*)', merge: 'n + excluded.n' },
    { name: 'nv', type: 'BIGINT NOT NULL', agg: () => 'count(latency_ms)', merge: 'nv + excluded.nv' },
    { name: 'errs', type: 'BIGINT NOT NULL', agg: () => `count(*) FILTER (WHERE ${HTTP_ERROR_SQL})`, merge: 'errs + excluded.errs' },
  ],
};

export const ROLLUPS = [CLIENTS_ROLLUP, SERIES_ROLLUP, LATENCY_ROLLUP];

const q = (name: string) => `"${name}"`;
const keyExpr = (e: string) => (e === 'CLIENT' ? clientSql(DUCKDB) : e);
/** The bucket a time falls in: an exact floor in whole microseconds (no float, also before 1970). */
const bucketOf = (r: Rollup, col: string) => `make_timestamp(epoch_us(${col}) - (((epoch_us(${col}) % ${r.bucketUs}) + ${r.bucketUs}) % ${r.bucketUs}))`;

export function createRollupSql(r: Rollup): string {
  const cols = [`bucket TIMESTAMP NOT NULL`, ...r.keys.map(([k, , type]) => `${q(k)} ${type ?? 'VARCHAR'} NOT NULL`), ...r.measures.map((m) => `${q(m.name)} ${m.type}`)];
  return `CREATE TABLE IF NOT EXISTS ${r.table} (${cols.join(', ')}, PRIMARY KEY (bucket, ${r.keys.map(([k]) => q(k)).join(', ')}))`;
}

/** Adds the source rows matching `where` (SQL over them) into the rollup. */
function addRowsSql(r: Rollup, where: string): string {
  const select = [bucketOf(r, 'ts'), ...r.keys.map(([, e]) => keyExpr(e)), ...r.measures.map((m) => m.agg())].join(', ');
  const groups = Array.from({ length: r.keys.length + 1 }, (_, i) => i + 1).join(', ');
  return `INSERT INTO ${r.table} SELECT ${select} FROM ${q(r.source)} WHERE ${where} GROUP BY ${groups} ` +
    `ON CONFLICT DO UPDATE SET ${r.measures.map((m) => `${q(m.name)} = ${m.merge}`).join(', ')}`;
}

const stageOf = (r: Rollup) => `${r.table}_stage`;

/** clientSql's rule in JS: the address of an ip:port or [v6]:port, brackets off. */
export function addressOnly(endpoint: string): string {
  if (endpoint.startsWith('[')) { const e = endpoint.indexOf(']', 1); return e < 0 ? endpoint.slice(1) : endpoint.slice(1, e); }
  const c = endpoint.indexOf(':');
  return c < 0 ? endpoint : endpoint.slice(0, c);
}

const at = (name: string) => CAPABILITIES.accept.fields.findIndex((f) => f.name === name);
const F = { time: at('time'), last: at('last'), local: at('local'), peer: at('peer'), client: at('client'), count: at('count'), summary: at('summary') };
const atHttp = (name: string) => CAPABILITIES.http.fields.findIndex((f) => f.name === name);
const H = { server: atHttp('server'), status: atHttp('status'), latency: atHttp('latency_ms'), error: atHttp('error') };
const floorTo = (us: number, b: number) => us - (((us % b) + b) % b);

/** One rollup row being summed: its bucket, keys (in the rollup's key order) and measures. */
interface Sum { bucket: number; keys: (string | number)[]; m: number[] }

/** One group commit's rows summed per rollup key, written in its transaction. */
export class RollupSums {
  private readonly sums = ROLLUPS.map(() => new Map<string, Sum>());

  add(agent: string, capability: string, rows: readonly EventRow[], receivedUs: number): void {
    if (capability === 'accept') this.addAccept(agent, rows);
    else if (capability === 'http') this.addHttp(agent, rows, receivedUs);
  }

  private addAccept(agent: string, rows: readonly EventRow[]): void {
    const [clients, series] = this.sums;
    for (const { values: v } of rows) {
      const time = v[F.time] as number, local = v[F.local] as string;
      const n = (v[F.count] as number) - (v[F.summary] ? 1 : 0);
      const last = (v[F.last] as number | null) ?? time;
      const client = addressOnly((v[F.client] as string | null) ?? (v[F.peer] as string));
      const hb = floorTo(time, CLIENTS_ROLLUP.bucketUs), mb = floorTo(time, SERIES_ROLLUP.bucketUs);
      const ck = `${hb}\n${agent}\n${local}\n${client}`;
      const c = clients.get(ck);
      if (c) { c.m[0] += n; if (last > c.m[1]) c.m[1] = last; } else clients.set(ck, { bucket: hb, keys: [agent, local, client], m: [n, last] });
      const sk = `${mb}\n${agent}\n${local}`;
      const s = series.get(sk);
      if (s) s.m[0] += n; else series.set(sk, { bucket: mb, keys: [agent, local], m: [n] });
    }
  }

  // Per row only number keys and a server lookup: hour, agent and extra keys change rarely within
  // a batch, so their map is found again only when they do (a string key per row cost ~1 us).
  private readonly latency = new Map<string, Map<string, Map<number, Sum>>>();

  private addHttp(agent: string, rows: readonly EventRow[], receivedUs: number): void {
    const sums = this.sums[ROLLUPS.indexOf(LATENCY_ROLLUP)];
    let hour = NaN, extra: string | null = null, servers: Map<string, Map<number, Sum>> | undefined;
    for (const row of rows) {
      const v = row.values;
      const h = floorTo(row.timeUs ?? receivedUs, LATENCY_ROLLUP.bucketUs), x = row.extra ?? '';
      if (h !== hour || x !== extra || !servers) {
        hour = h; extra = x;
        const k = JSON.stringify([h, agent, x]);
        servers = this.latency.get(k);
        if (!servers) this.latency.set(k, servers = new Map());
      }
      const server = v[H.server] as string, ms = v[H.latency] as number | null, status = v[H.status] as number | null;
      const b = ms === null ? NO_LATENCY : latencyBucket(ms);
      let byBucket = servers.get(server);
      if (!byBucket) servers.set(server, byBucket = new Map());
      const err = v[H.error] !== null || (status !== null && status >= 500) ? 1 : 0;
      const s = byBucket.get(b);
      if (s) { s.m[0] += 1; s.m[1] += ms === null ? 0 : 1; s.m[2] += err; } else {
        const sum = { bucket: h, keys: [agent, x, server, b], m: [1, ms === null ? 0 : 1, err] };
        byBucket.set(b, sum);
        sums.set(`${sums.size}`, sum);
      }
    }
  }

  async write(conn: DuckDBConnection): Promise<void> {
    for (const [i, r] of ROLLUPS.entries()) {
      const sums = this.sums[i];
      if (!sums.size) continue;
      const app = await conn.createAppender(stageOf(r), 'main', 'temp');
      for (const s of sums.values()) {
        app.appendTimestamp(new DuckDBTimestampValue(BigInt(s.bucket)));
        s.keys.forEach((k, j) => { if (r.keys[j][2] === 'INTEGER') app.appendInteger(k as number); else app.appendVarchar(k as string); });
        s.m.forEach((m, j) => { if (r.measures[j].type.startsWith('TIMESTAMP')) app.appendTimestamp(new DuckDBTimestampValue(BigInt(m))); else app.appendBigInt(BigInt(m)); });
        app.endRow();
      }
      app.flushSync(); app.closeSync();
      await conn.run(`INSERT INTO ${r.table} SELECT * FROM temp.main.${stageOf(r)} ON CONFLICT DO UPDATE SET ${r.measures.map((m) => `${q(m.name)} = ${m.merge}`).join(', ')}`);
      await conn.run(`DELETE FROM temp.main.${stageOf(r)}`);
    }
  }
}

/** Creates missing rollup tables, filling a new one from what is stored already (an older file),
 * and the writer connection's staging tables. */
export async function ensureRollups(conn: DuckDBConnection): Promise<void> {
  for (const r of ROLLUPS) await conn.run(createRollupSql(r).replace(`CREATE TABLE IF NOT EXISTS ${r.table} (`, `CREATE TEMP TABLE IF NOT EXISTS ${stageOf(r)} (`).replace(/, PRIMARY KEY \(.*\)\)$/, ')'));
  const have = new Set((await conn.runAndReadAll('SELECT table_name FROM duckdb_tables()')).getRows().map(([t]) => t as string));
  for (const r of ROLLUPS) {
    if (have.has(r.table)) continue;
    // made and filled in one transaction: a collector killed while filling must not leave an
    // empty table that the next start takes for a complete one
    await conn.run('BEGIN TRANSACTION');
    try {
      await conn.run(createRollupSql(r));
      await conn.run(addRowsSql(r, 'true'));
      await conn.run('COMMIT');
    } catch (e) {
      await conn.run('ROLLBACK').catch(() => { /* nothing open */ });
      throw e;
    }
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
    parts.push(`SELECT ${rows} FROM ${q(r.source)} WHERE ${and(['ts >= make_timestamp($since::BIGINT)', 'ts < make_timestamp($rollup_from::BIGINT)'])}`);
  }
  if (f.untilUs !== null && to! < f.untilUs) {
    params.until = f.untilUs;
    parts.push(`SELECT ${rows} FROM ${q(r.source)} WHERE ${and(['ts >= make_timestamp($rollup_to::BIGINT)', 'ts < make_timestamp($until::BIGINT)'])}`);
  }
  return `(${parts.join(' UNION ALL ')})`;
}

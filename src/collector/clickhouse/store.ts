// The collector's store in a ClickHouse database, through @clickhouse/client: the same tables,
// ingest semantics and query answers as the embedded DuckDB store (store.ts).
//
// A batch stored once: ClickHouse has no transactions to commit a batch's rows and its
// ingest_batches row together, so a batch goes in as (1) a look-up in ingest_batches (seen:
// 'duplicate'), (2) one INSERT of its rows with insert_deduplication_token = agent/batch, (3) one
// INSERT of its ingest_batches row, and is acknowledged only after ClickHouse acknowledged both.
// (The token also carries a hash of the rows: an id used again for other rows, after retention
// forgot it, is another batch and is stored, as in DuckDB.)
// A crash (or a lost answer) between 2 and 3 leaves rows without their batch id: the agent's
// retry passes the look-up, and ClickHouse drops its INSERT of the rows as a duplicate of the
// token (tables keep the last DEDUP_WINDOW tokens), so the rows are still there once. Two retries
// of one batch in this collector wait for each other; two collectors racing on one batch (a bus
// redelivering) are still stored once by the token, and their two ingest_batches rows fold into
// one (ReplacingMergeTree, read FINAL).
//
// Retention: a TTL on each table deletes in the background by the server's clock; enforceRetention
// deletes now (lightweight DELETE), as the DuckDB store does.
import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { TcplensError } from '../../errors.js';
import { CLICKHOUSE } from '../queries/dialect.js';
import { buildEventSelect, type EventQuery } from '../query.js';
import { CAPABILITIES, ident, rowToRecord, type CapabilitySchema } from '../schema.js';
import type { CollectorStore, IngestBatch, IngestOutcome, SqlParams, StoreOptions, StoreRead } from '../store-api.js';
import { splitBatchId } from '../store.js';
import { bindParams } from './params.js';
import { createTableClickHouse, INGEST_BATCHES_TABLE, RETAINED, ttlSql } from './tables.js';

/** Batches written at once (each is its own INSERTs; more in flight only queue in ClickHouse). */
const MAX_IN_FLIGHT = 4;
const EVENT_TABLES = new Set(Object.values(CAPABILITIES).map((s) => ident(s.name)));
const SIZE_EVERY_MS = 15_000;

/** What every query of the store runs with: 64-bit integers as strings (ids, counts: no rounding),
 * and NULL, not a default value, for a LEFT JOIN's missing side (as in DuckDB). */
export const CLICKHOUSE_SETTINGS = { output_format_json_quote_64bit_integers: 1, join_use_nulls: 1 } as const;

export interface ClickHouseStoreOptions extends StoreOptions {
  /** where the store is, for messages (never with a password) */
  where: string;
}

/** µs since the epoch -> DateTime64's text form, 'YYYY-MM-DD hh:mm:ss.uuuuuu' (UTC columns). */
export function dateTime64Text(us: number): string {
  const iso = new Date(Math.floor(us / 1000)).toISOString();
  const micros = ((us % 1000) + 1000) % 1000;
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(micros).padStart(3, '0')}`;
}

/** Test-only: TCPLENS_COLLECTOR_FAILPOINT=die-after-rows:N kills the process right after the Nth
 * batch's rows went in (its id not yet), die-after-commit:N after its id too, both before any
 * acknowledgement: the crash windows kill -9 from outside rarely hits. */
function failpoint(name: 'die-after-rows' | 'die-after-commit', n: number): void {
  const m = /^([a-z-]+):(\d+)$/.exec(process.env.TCPLENS_COLLECTOR_FAILPOINT ?? '');
  if (m && m[1] === name && Number(m[2]) === n) process.kill(process.pid, 'SIGKILL');
}

/** The rows as sent (no ids or arrival time, which a retry gets anew). */
function rowsHash(batch: IngestBatch): string {
  const text = JSON.stringify(batch.rows, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

export class ClickHouseStore implements CollectorStore {
  readonly dialect = CLICKHOUSE;
  private nextId = 1n;
  private closed = false;
  private size = 0;
  private timers: NodeJS.Timeout[] = [];
  private readonly now: () => number;
  /** per agent/batch: the write under way, so a retry waits and then finds it stored */
  private readonly pending = new Map<string, Promise<IngestOutcome>>();
  private readonly writes = new Set<Promise<unknown>>();
  private waiting: (() => void)[] = [];
  private running = 0;
  /** the tables retention trims: the events, the batch ids, and those of retainAlso */
  private readonly retained = [...RETAINED];
  private written = 0;

  private constructor(private readonly client: ClickHouseClient, private readonly opts: ClickHouseStoreOptions) {
    this.now = opts.now ?? Date.now;
  }

  static async open(client: ClickHouseClient, opts: ClickHouseStoreOptions): Promise<ClickHouseStore> {
    const store = new ClickHouseStore(client, opts);
    try {
      await store.init();
    } catch (e) {
      await client.close().catch(() => { /* already failing */ });
      throw store.error(`cannot open ${opts.where}`, e);
    }
    if (opts.retentionMs > 0) {
      const every = opts.retentionEveryMs ?? Math.min(60_000, Math.max(1000, Math.floor(opts.retentionMs / 10)));
      store.every(every, () => store.enforceRetention(), 'retention');
    }
    store.every(SIZE_EVERY_MS, () => store.refreshSize(), 'storage size');
    return store;
  }

  private every(ms: number, fn: () => Promise<unknown>, what: string): void {
    const t = setInterval(() => { void fn().catch((e) => process.stderr.write(`tcplens: ${what}: ${(e as Error).message}\n`)); }, ms);
    t.unref();
    this.timers.push(t);
  }

  private async init(): Promise<void> {
    for (const s of Object.values(CAPABILITIES)) await this.command(createTableClickHouse(s));
    await this.command(INGEST_BATCHES_TABLE);
    // The server's TTL deletes by the server's clock: a store given another clock (tests) leaves
    // deleting to enforceRetention.
    const ttlMs = this.opts.now ? 0 : this.opts.retentionMs;
    for (const [table, column] of RETAINED) {
      await this.command(ttlSql(table, column, ttlMs), { materialize_ttl_after_modify: 0 })
        .catch((e) => { if (ttlMs > 0) throw e; /* REMOVE TTL where there was none */ });
    }
    const max = await this.read(Object.values(CAPABILITIES).map((s) => `SELECT max(id) FROM ${ident(s.name)}`).join(' UNION ALL '));
    for (const [m] of max) if (BigInt(m as string) >= this.nextId) this.nextId = BigInt(m as string) + 1n;
    await this.refreshSize();
  }

  private error(what: string, e: unknown): TcplensError {
    return new TcplensError('TCPLENS_ERR_STORE', `${what}: ${(e as Error)?.message ?? String(e)}`,
      `check that ClickHouse at ${this.opts.where} is up and that its user may create tables and insert into that database`);
  }

  private async command(sql: string, settings: Record<string, unknown> = {}, params: SqlParams = {}): Promise<void> {
    const bound = bindParams(sql, params);
    await this.client.command({ ...bound, clickhouse_settings: { ...CLICKHOUSE_SETTINGS, ...settings } });
  }

  ingest(batch: IngestBatch): Promise<IngestOutcome> {
    if (this.closed) return Promise.reject(new TcplensError('TCPLENS_ERR_STORE', 'the store is closed', 'the collector is shutting down; retry'));
    // Ids are taken now, in the order batches arrive, so ingest order holds with writes in parallel.
    const firstId = this.nextId;
    this.nextId += BigInt(batch.rows.length);
    const key = `${batch.agent}/${batch.batch}`;
    const before = this.pending.get(key);
    const mine: Promise<IngestOutcome> = (before ? before.catch(() => undefined) : Promise.resolve()).then(() => this.limited(() => this.write(batch, firstId, `${key}/${rowsHash(batch)}`)));
    this.pending.set(key, mine);
    const tracked = mine.finally(() => {
      if (this.pending.get(key) === mine) this.pending.delete(key);
      this.writes.delete(tracked);
    });
    this.writes.add(tracked);
    return mine;
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    while (this.running >= MAX_IN_FLIGHT) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async write(batch: IngestBatch, firstId: bigint, token: string): Promise<IngestOutcome> {
    try {
      const seen = await this.read('SELECT count() FROM ingest_batches WHERE agent = $agent AND batch = $batch', { agent: batch.agent, batch: batch.batch });
      if (Number(seen[0][0]) > 0) return 'duplicate';
      const received = dateTime64Text(this.now() * 1000);
      const schema = CAPABILITIES[batch.capability];
      if (batch.rows.length) {
        const values = batch.rows.map((row, i) => this.rowValues(schema, batch, row, firstId + BigInt(i), received));
        await this.client.insert({ table: ident(schema.name), values, format: 'JSONCompactEachRow', clickhouse_settings: { ...CLICKHOUSE_SETTINGS, insert_deduplication_token: token } });
      }
      const n = ++this.written;
      failpoint('die-after-rows', n);
      const { run, seq } = splitBatchId(batch.batch);
      await this.client.insert({
        table: 'ingest_batches', format: 'JSONCompactEachRow', clickhouse_settings: CLICKHOUSE_SETTINGS,
        values: [[batch.agent, batch.batch, run, seq === null ? null : Number(seq), batch.capability, batch.rows.length, received]],
      });
      failpoint('die-after-commit', n);
      return 'stored';
    } catch (e) {
      throw this.error('storing a batch failed', e);
    }
  }

  private rowValues(schema: CapabilitySchema, batch: IngestBatch, row: IngestBatch['rows'][number], id: bigint, received: string): unknown[] {
    const out: unknown[] = [Number(id), batch.agent, batch.batch, received, row.timeUs === null ? received : dateTime64Text(row.timeUs)];
    schema.fields.forEach((f, i) => {
      const v = row.values[i];
      out.push(v === null ? null : f.type === 'time' ? dateTime64Text(v as number) : v);
    });
    out.push(row.extra);
    return out;
  }

  async query(q: EventQuery): Promise<Record<string, unknown>[]> {
    const schemas = q.capability ? [CAPABILITIES[q.capability]] : Object.values(CAPABILITIES);
    const found: { id: bigint; rec: Record<string, unknown> }[] = [];
    // The tables at once: a server answers them in parallel (chDB in turn).
    const answers = await Promise.all(schemas.map(async (s) => {
      const built = buildEventSelect(s, q, CLICKHOUSE);
      return { s, rows: built ? await this.read(built.sql, built.params) : [] };
    }));
    for (const { s, rows } of answers) {
      for (const row of rows) {
        const rec = rowToRecord(s, row.slice(2, -1), row[row.length - 1] as string | null);
        found.push({ id: BigInt(row[0] as string), rec: { ...rec, agent: row[1] as string, capability: s.name } });
      }
    }
    found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return found.slice(0, q.limit).map((f) => f.rec);
  }

  /** ClickHouse has no read transaction: the reads are plain ones, which an insert may fall between. */
  readTogether<T>(fn: (read: StoreRead) => Promise<T>): Promise<T> {
    return fn((sql, params) => this.read(sql, params));
  }

  async read(sql: string, params: SqlParams = {}): Promise<unknown[][]> {
    try {
      const rs = await this.client.query({ ...bindParams(sql, params), format: 'JSONCompactEachRow', clickhouse_settings: CLICKHOUSE_SETTINGS });
      return await rs.json<unknown[]>();
    } catch (e) {
      // ClickHouse refusing our SQL is our bug (500); not reaching it is the store's trouble (503).
      // (By shape: chDB raises client-common's ClickHouseError, another class than the client's.)
      if (e instanceof Error && 'type' in e && 'code' in e) throw e;
      throw this.error('a query failed', e);
    }
  }

  /** One statement after the other: ClickHouse has no transaction to put them in (agent_runs is append-only). */
  async execute(statements: { sql: string; params?: SqlParams }[]): Promise<void> {
    try {
      for (const st of statements) await this.command(st.sql, {}, st.params);
    } catch (e) {
      throw this.error('bookkeeping write failed', e);
    }
  }

  retainAlso(table: string, column: string): void {
    this.retained.push([ident(table), column]);
  }

  async enforceRetention(): Promise<number> {
    if (this.opts.retentionMs <= 0) return 0;
    const cut = BigInt(this.now() - this.opts.retentionMs) * 1000n;
    let deleted = 0;
    for (const [table, column] of this.retained) {
      const where = `${column} < ${CLICKHOUSE.timestamp('$cut')}`;
      const [[n]] = await this.read(`SELECT count() FROM ${table} WHERE ${where}`, { cut });
      if (Number(n) === 0) continue;
      await this.command(`DELETE FROM ${table} WHERE ${where}`, {}, { cut });
      if (EVENT_TABLES.has(table)) deleted += Number(n);
    }
    return deleted;
  }

  async agentsLastSeen(): Promise<Map<string, number>> {
    const rows = await this.read('SELECT agent, toUnixTimestamp64Milli(max(received)) FROM ingest_batches GROUP BY agent');
    return new Map(rows.map(([a, ms]) => [a as string, Number(ms)]));
  }

  private async refreshSize(): Promise<void> {
    const [[bytes]] = await this.read('SELECT sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() AND active');
    this.size = Number(bytes);
  }

  /** Bytes of the database's active parts, as of the last look (every 15 s). */
  sizeBytes(): number {
    return this.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    while (this.writes.size) await Promise.allSettled([...this.writes]);
    await this.client.close();
  }
}

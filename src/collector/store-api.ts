// What the collector needs of a store, whichever engine holds the events: the embedded DuckDB
// file (store.ts, the default) or a ClickHouse database (clickhouse/store.ts). Ingest semantics
// are the same for both: a batch is acknowledged only once the engine has it, and an (agent,
// batch id) seen before is answered 'duplicate' and not stored again.
import type { SqlDialect } from './queries/dialect.js';
import type { EventQuery } from './query.js';
import type { IngestBatch, IngestOutcome } from './store.js';

export type { IngestBatch, IngestOutcome, StoreOptions } from './store.js';

export type SqlParams = Record<string, string | number | bigint | boolean | null>;

export type StoreRead = (sql: string, params?: Record<string, string | number | bigint | boolean>) => Promise<unknown[][]>;

export interface CollectorStore {
  /** how the query routes spell their SQL for this engine */
  readonly dialect: SqlDialect;
  /** Resolves once the batch is stored (or known already); rejects with TCPLENS_ERR_STORE. */
  ingest(batch: IngestBatch): Promise<IngestOutcome>;
  /** Records as ingested plus agent and capability, oldest first (ingest order), at most q.limit. */
  query(q: EventQuery): Promise<Record<string, unknown>[]>;
  /** A read-only query of the routes ($name parameters); rows as arrays of column values. */
  read(sql: string, params?: Record<string, string | number | bigint | boolean>): Promise<unknown[][]>;
  /** Reads that see one state of the store, where the engine offers that (DuckDB: one read
   * transaction; ClickHouse: plain reads, which a concurrent insert may fall between). */
  readTogether<T>(fn: (read: StoreRead) => Promise<T>): Promise<T>;
  /** The collector's own bookkeeping writes (agent_runs), in the store's dialect. */
  execute(statements: { sql: string; params?: SqlParams }[]): Promise<void>;
  /** A table of the collector's own (agent_runs) whose rows retention deletes too, by a timestamp column. */
  retainAlso(table: string, column: string): void;
  /** Deletes what is older than the retention; returns events deleted. */
  enforceRetention(): Promise<number>;
  /** Last batch time per agent (epoch ms), from what is stored. */
  agentsLastSeen(): Promise<Map<string, number>>;
  /** Bytes the store takes on disk (for the metrics gauge; may lag a few seconds). */
  sizeBytes(): number;
  close(): Promise<void>;
}

// The collector's tables in ClickHouse: the same columns as DuckDB's (store.ts createTableSql),
// as MergeTree tables ordered for the page's queries, with a TTL for the retention.
//
// Ordering keys: accept is read per service over a time range (top clients, series), so
// (local, ts); http by time range and agent (balance, probe sightings), so (ts, agent); probe by
// run; hops per agent. A minmax index on ts lets a time range skip granules whatever the key
// (rows arrive roughly in time order, so each granule spans a short time). GET /v1/events sorts
// by id, which is cheap on the narrow id column.
import { CAPABILITIES, ident, type CapabilityName, type CapabilitySchema, type Field, type Scalar } from '../schema.js';

const CH_TYPES: Record<Scalar, string> = {
  string: 'String', int: 'Int32', bigint: 'Int64', number: 'Float64', bool: 'Bool', time: "DateTime64(6, 'UTC')",
};

const ORDER_BY: Record<CapabilityName, string> = {
  accept: '("local", ts)', http: '(ts, agent)', hops: '(agent, ts)', probe: '(run, ts)',
};

/** How many recent inserts a non-replicated MergeTree remembers for insert_deduplication_token. */
export const DEDUP_WINDOW = 100_000;

export function columnTypeClickHouse(f: Field): string {
  const t = typeof f.type === 'object' ? 'String' : CH_TYPES[f.type];
  return f.nullable || f.optional ? `Nullable(${t})` : t;
}

export function createTableClickHouse(schema: CapabilitySchema): string {
  const cols = schema.fields.map((f) => `${ident(f.name)} ${columnTypeClickHouse(f)}`);
  return `CREATE TABLE IF NOT EXISTS ${ident(schema.name)} (id Int64, agent LowCardinality(String), batch String, ` +
    `received DateTime64(6, 'UTC'), ts DateTime64(6, 'UTC'), ${cols.join(', ')}, extra Nullable(String), INDEX ts_range ts TYPE minmax GRANULARITY 1) ` +
    `ENGINE = MergeTree ORDER BY ${ORDER_BY[schema.name]} SETTINGS non_replicated_deduplication_window = ${DEDUP_WINDOW}`;
}

/** One row per stored batch; a batch stored twice (two collectors racing on a retry) folds into one on
 * merge. No insert deduplication here: a batch id written again (its rows went in, its id did not)
 * must be written. */
export const INGEST_BATCHES_TABLE = 'CREATE TABLE IF NOT EXISTS ingest_batches (agent String, batch String, run Nullable(String), seq Nullable(Int64), ' +
  "capability LowCardinality(String), events Int32, received DateTime64(6, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY (agent, batch)";

/** Each table and the column its retention goes by (events by their time, batch ids by arrival). */
export const RETAINED: [table: string, column: string][] = [
  ...Object.values(CAPABILITIES).map((s): [string, string] => [ident(s.name), 'ts']),
  ['ingest_batches', 'received'],
];

export function ttlSql(table: string, column: string, retentionMs: number): string {
  return retentionMs > 0
    ? `ALTER TABLE ${table} MODIFY TTL toDateTime(${column}) + toIntervalSecond(${Math.ceil(retentionMs / 1000)})`
    : `ALTER TABLE ${table} REMOVE TTL`;
}

// Where DuckDB's and ClickHouse's SQL differ, for the query builders: the route SQL is written
// once, and the few functions that are spelled (or behave) differently come from here. Parameters
// stay `$name` in both: the ClickHouse store binds them as {name:Type} (clickhouse/params.ts).

export interface SqlDialect {
  name: 'duckdb' | 'clickhouse';
  /** a parameter holding microseconds since the epoch, as a timestamp */
  timestamp(param: string): string;
  /** a timestamp as epoch milliseconds */
  epochMs(expr: string): string;
  intDiv(a: string, b: string): string;
  startsWith(s: string, prefix: string): string;
  endsWith(s: string, suffix: string): string;
  /** the n-th (from 1) piece of s split at sep */
  splitPart(s: string, sep: string, n: number): string;
  /** nearest-rank quantile (what balance.ts's quantile computes), NULL over no values */
  quantile(expr: string, q: number): string;
  /** arg at the row of the largest by (rows with a NULL arg are ignored, in both engines) */
  argMax(arg: string, by: string): string;
  /** a whole number as text */
  text(expr: string): string;
  /** http --netns's tag in the record's extra keys: a name, or an object with one; NULL without */
  netns: string;
}

export const DUCKDB: SqlDialect = {
  name: 'duckdb',
  timestamp: (p) => `make_timestamp(${p}::BIGINT)`,
  epochMs: (e) => `epoch_ms(${e})`,
  intDiv: (a, b) => `(${a} // ${b})`,
  startsWith: (s, p) => `starts_with(${s}, ${p})`,
  endsWith: (s, p) => `ends_with(${s}, ${p})`,
  splitPart: (s, sep, n) => `split_part(${s}, ${sep}, ${n})`,
  quantile: (e, q) => `quantile_disc(${e}, ${q})`,
  argMax: (a, b) => `arg_max(${a}, ${b})`,
  text: (e) => `${e}::VARCHAR`,
  netns: `coalesce(json_extract_string(extra, '$.netns.name'), json_extract_string(extra, '$.netns'))`,
};

export const CLICKHOUSE: SqlDialect = {
  name: 'clickhouse',
  timestamp: (p) => `fromUnixTimestamp64Micro(${p})`,
  epochMs: (e) => `toUnixTimestamp64Milli(${e})`,
  intDiv: (a, b) => `intDiv(${a}, ${b})`,
  startsWith: (s, p) => `startsWith(${s}, ${p})`,
  endsWith: (s, p) => `endsWith(${s}, ${p})`,
  splitPart: (s, sep, n) => `splitByString(${sep}, ${s})[${n}]`,
  // quantileExact* round differently from nearest rank; DuckDB's quantile_disc index is
  // n - floor(n - q*n) (1-based), taken here from the sorted values.
  quantile: (e, q) => `if(count(${e}) = 0, NULL, arraySort(groupArray(${e}))[toUInt64(greatest(1, count(${e}) - floor(count(${e}) - ${q} * count(${e}))))])`,
  argMax: (a, b) => `argMax(${a}, ${b})`,
  text: (e) => `toString(${e})`,
  netns: `multiIf(JSONHas(extra, 'netns', 'name'), JSONExtractString(extra, 'netns', 'name'), JSONType(extra, 'netns') = 'String', JSONExtractString(extra, 'netns'), NULL)`,
};

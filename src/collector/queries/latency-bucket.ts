// The latency bucket of GET /v1/balance's exact percentiles (balance.ts): a log scale, 32 buckets
// per factor e (~3 % wide). What matters is that it never decreases as the latency grows, so that
// bucket order is latency order.
//
// The DuckDB store computes it once per row, in JS at ingest, and keeps it in the http table's
// latency_bucket column, which the rollup sums by: so the query's two steps can never put a
// latency in different buckets, and the second one filters on a stored integer instead of taking
// a logarithm of every row (34 ms of the query's ~90 over a day). A file from before that column
// gets it filled by LATENCY_BUCKET_SQL once, and the rollup then built from the column. DuckDB's
// ln and V8's Math.log can differ in the last bit, so in such a file two latencies a rounding step
// apart at a bucket edge (none among whole-microsecond values from 0.001 ms to 2 s, checked) may
// sort in either order: a percentile there is off by at most that step.

const PER_E = 32;
/** latencies at or under this (and negative ones) share the lowest bucket */
const FLOOR_MS = 0.001;
/** the bucket key of a request without a latency, in the rollup (whose keys are NOT NULL) */
export const NO_LATENCY = -1_000_000;

export const latencyBucket = (ms: number) => Math.floor(Math.log(Math.max(ms, FLOOR_MS)) * PER_E);
/** The same in DuckDB's SQL, over an http row. */
export const LATENCY_BUCKET_SQL = `CAST(floor(ln(greatest(latency_ms, ${FLOOR_MS})) * ${PER_E}) AS INTEGER)`;
export const LATENCY_BUCKET_COLUMN = 'latency_bucket';

// Collector ingest rate, three ways in one run, so the ratios hold on whatever machine runs it:
//   anchor   the faster of two bare DuckDB appends of already typed accept rows, one transaction,
//            commit (the floor of storing): row-wise appender calls, and columnar data chunks
//            (columns.ts, which the store uses too, fed rows validated before the clock starts);
//            beside it, for comparison, DuckDB's own NDJSON reader fed the same bytes
//   store    EventStore.ingest in this process: NDJSON parse + validation + appender + dedup + commit
//   http     a real `tcplens collector` child process fed over loopback by SENDERS concurrent
//            senders posting BATCH-event NDJSON batches (the load generator runs beside it)
//   node dist/bench/collector/ingest-rate.js [events=300000] [batch=5000] [senders=4]
import '../stdout-closed.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, DuckDBTimestampValue } from '@duckdb/node-api';
import { CAPABILITIES, type Field } from '../../src/collector/schema.js';
import { NdjsonRows } from '../../src/collector/ndjson-body.js';
import { createTableSql, EventStore } from '../../src/collector/store.js';
import { ChunkAppender } from '../../src/collector/columns.js';
import { postBatch, startCollector } from '../../test/helpers/collector-process.js';
import { acceptRecord } from '../../test/helpers/collector-records.js';

const total = Number(process.argv[2] ?? 300_000);
const batch = Number(process.argv[3] ?? 5000);
const senders = Number(process.argv[4] ?? 4);
const batches = Math.ceil(total / batch);
const dir = mkdtempSync(join(tmpdir(), 'tcplens-bench-collector-'));
const body = Array.from({ length: batch }, (_, i) => `${JSON.stringify(acceptRecord(i))}\n`).join('');
const events = batches * batch;

async function anchorRows(): Promise<number> {
  const inst = await DuckDBInstance.create(join(dir, 'anchor-rows.duckdb'));
  const c = await inst.connect();
  await c.run(createTableSql(CAPABILITIES.accept));
  const recs = Array.from({ length: batch }, (_, i) => acceptRecord(i));
  const t0 = performance.now();
  let id = 0n;
  await c.run('BEGIN TRANSACTION');
  const a = await c.createAppender('accept');
  const now = new DuckDBTimestampValue(BigInt(Date.now()) * 1000n);
  for (let b = 0; b < batches; b++) {
    for (const r of recs) {
      a.appendBigInt(id++); a.appendVarchar('bench'); a.appendVarchar(`b-${b}`); a.appendTimestamp(now);
      const ts = new DuckDBTimestampValue(BigInt(Date.parse(r.time)) * 1000n);
      a.appendTimestamp(ts); a.appendTimestamp(ts); a.appendNull(); a.appendVarchar(r.local); a.appendVarchar(r.peer); a.appendVarchar(r.client);
      a.appendVarchar(JSON.stringify(r.toa)); a.appendBoolean(r.trusted); a.appendNull(); a.appendInteger(r.count); a.appendBoolean(r.summary);
      a.appendInteger(r.ttl); a.appendInteger(r.hops); a.appendBigInt(BigInt(r.kernel_ns)); a.appendInteger(r.pid); a.appendVarchar(r.comm);
      a.appendVarchar(r.cgroup); a.appendBigInt(BigInt(r.netns)); a.appendNull();
      a.endRow();
    }
  }
  a.flushSync(); a.closeSync();
  await c.run('COMMIT');
  const s = (performance.now() - t0) / 1000;
  c.closeSync(); inst.closeSync();
  return events / s;
}

async function anchorChunks(): Promise<number> {
  const inst = await DuckDBInstance.create(join(dir, 'anchor-chunks.duckdb'));
  const c = await inst.connect();
  await c.run(createTableSql(CAPABILITIES.accept));
  const p = new NdjsonRows(CAPABILITIES.accept);
  p.push(body);
  const rows = p.end();
  const chunks = new ChunkAppender(CAPABILITIES.accept);
  const t0 = performance.now();
  await c.run('BEGIN TRANSACTION');
  const a = await c.createAppender('accept');
  let id = 1;
  for (let b = 0; b < batches; b++) id = chunks.append(a, rows, { agent: 'bench', batch: `b-${b}`, receivedUs: Date.now() * 1000 }, id);
  a.flushSync(); a.closeSync();
  await c.run('COMMIT');
  const s = (performance.now() - t0) / 1000;
  c.closeSync(); inst.closeSync();
  return events / s;
}

/** Not an appender: DuckDB's own NDJSON reader (C++ parse and cast, INSERT ... SELECT FROM
 * read_json), to show whether handing DuckDB the bytes would be faster than appending rows. */
async function anchorReadJson(): Promise<number> {
  const inst = await DuckDBInstance.create(join(dir, 'anchor-read-json.duckdb'));
  const c = await inst.connect();
  await c.run(createTableSql(CAPABILITIES.accept));
  const file = join(dir, 'batch.ndjson');
  writeFileSync(file, body);
  const types = new Map((await c.runAndReadAll("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'accept'")).getRows().map(([n, t]) => [n as string, t as string]));
  const fields = CAPABILITIES.accept.fields;
  const asRead = (f: Field) => (f.type === 'time' ? 'VARCHAR' : typeof f.type === 'object' ? 'JSON' : types.get(f.name)!);
  const columns = `{${fields.map((f) => `'${f.name}': '${asRead(f)}'`).join(', ')}}`;
  const select = fields.map((f) => `CAST("${f.name}" AS ${types.get(f.name)})`).join(', ');
  const t0 = performance.now();
  await c.run('BEGIN TRANSACTION');
  for (let b = 0; b < batches; b++) {
    await c.run(`INSERT INTO accept SELECT ${b * batch} + row_number() OVER (), 'bench', 'b-${b}', now()::TIMESTAMP, CAST("time" AS TIMESTAMP), ${select}, NULL ` +
      `FROM read_json('${file}', format = 'newline_delimited', columns = ${columns})`);
  }
  await c.run('COMMIT');
  const s = (performance.now() - t0) / 1000;
  c.closeSync(); inst.closeSync();
  return events / s;
}

async function store(): Promise<number> {
  const st = await EventStore.open(join(dir, 'store.duckdb'), { retentionMs: 0 });
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let b = 0; b < batches; b++) {
    const p = new NdjsonRows(CAPABILITIES.accept);
    p.push(body);
    pending.push(st.ingest({ agent: 'bench', capability: 'accept', batch: `r-${b}`, rows: p.end() }));
    if (pending.length >= senders) await pending.shift();
  }
  await Promise.all(pending);
  const s = (performance.now() - t0) / 1000;
  await st.close();
  return events / s;
}

async function http(): Promise<{ rate: number; p50: number; p99: number }> {
  const c = await startCollector(join(dir, 'http.duckdb'));
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: senders }, async (_, s) => {
    while (next < batches) {
      const b = next++;
      const t = performance.now();
      const r = await postBatch(c.url, `bench-${s}`, 'accept', `r-${b}`, body);
      if (r.status !== 200) throw new Error(`batch ${b}: ${r.status} ${r.text}`);
      lat.push(performance.now() - t);
    }
  }));
  const s = (performance.now() - t0) / 1000;
  await c.stop();
  lat.sort((a, b) => a - b);
  return { rate: events / s, p50: lat[Math.floor(lat.length / 2)], p99: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] };
}

try {
  const rowWise = await anchorRows();
  const chunked = await anchorChunks();
  const a = Math.max(rowWise, chunked);
  const readJson = await anchorReadJson();
  const st = await store();
  const h = await http();
  const k = (x: number) => `${Math.round(x / 1000)}k/s`;
  console.log(`collector ingest, ${events} accept events in batches of ${batch}, ${senders} senders`);
  console.log(`  anchor: bare DuckDB append          ${k(a)}  (row-wise appender ${k(rowWise)}, columnar chunks ${k(chunked)})`);
  console.log(`          DuckDB's own NDJSON reader  ${k(readJson)}  (${(readJson / a).toFixed(2)} x anchor; not an appender: the bytes handed to read_json)`);
  console.log(`  store:  validate + store + commit   ${k(st)}  (${(st / a).toFixed(2)} x anchor)`);
  console.log(`  http:   collector process, loopback ${k(h.rate)}  (${(h.rate / a).toFixed(2)} x anchor; batch ack p50 ${h.p50.toFixed(1)} ms, p99 ${h.p99.toFixed(1)} ms)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Each store (a real DuckDB file in a temp dir, and real ClickHouse in chDB) passes the same
// tests: stored records come back exactly, a batch id seen before is not stored again (also
// across a reopen), retention deletes by the record's time and forgets old batch ids, and
// concurrent batches are each stored once without mixing.
import nodeTest, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { IngestBatch } from '../../src/collector/store-api.js';
import { openStore } from '../../src/collector/store-url.js';
import { CAPABILITIES, recordToRow, type CapabilityName } from '../../src/collector/schema.js';
import { parseEventQuery } from '../../src/collector/query.js';
import { AgentRuns } from '../../src/collector/agent-runs.js';
import { acceptRecord, acceptSummary, hopsRecord, hopsSpreadRecord, httpRecord, probeRecord } from '../helpers/collector-records.js';
import { newStorePlace, STORE_KINDS } from '../helpers/collector-stores.js';

const batchOf = (agent: string, capability: CapabilityName, batch: string, recs: object[]): IngestBatch =>
  ({ agent, capability, batch, rows: recs.map((r, i) => recordToRow(CAPABILITIES[capability], r, `line ${i + 1}`)) });

const q = (params: Record<string, string>) => parseEventQuery(new URLSearchParams(params), NOW);
const NOW = Date.UTC(2026, 11, 1, 22, 0, 0);

for (const kind of STORE_KINDS) {
  const test = (name: string, opts: { timeout: number }, fn: (t: TestContext) => Promise<void>) => nodeTest(`${kind}: ${name}`, opts, fn);

  test('ingest then query: every capability, exactly as sent, plus agent and capability, in ingest order', { timeout: 30_000 }, async (t) => {
    const store = await openStore(newStorePlace(kind, t), { retentionMs: 0, now: () => NOW });
    t.after(() => store.close());
    const sets: [CapabilityName, object[]][] = [
      ['accept', [acceptRecord(1), acceptSummary()]], ['http', [httpRecord(1)]],
      ['hops', [hopsRecord('tcp4://a:1'), hopsSpreadRecord()]], ['probe', [probeRecord()]],
    ];
    for (const [cap, recs] of sets) assert.equal(await store.ingest(batchOf('n1', cap, `r-${cap}`, recs)), 'stored');
    const all = await store.query(q({}));
    assert.deepStrictEqual(all, sets.flatMap(([cap, recs]) => recs.map((r) => ({ ...r, agent: 'n1', capability: cap }))));
    assert.deepStrictEqual(await store.query(q({ capability: 'accept', client: acceptRecord(1).client })), [{ ...acceptRecord(1), agent: 'n1', capability: 'accept' }]);
    assert.equal((await store.query(q({ limit: '2' }))).length, 2);
    assert.deepStrictEqual(await store.query(q({ agent: "n1' OR '1'='1" })), []);
  });

  test('a batch id seen before is acknowledged as duplicate and stored once, also after a reopen', { timeout: 30_000 }, async (t) => {
    const path = newStorePlace(kind, t);
    let store = await openStore(path, { retentionMs: 0 });
    const b = batchOf('n1', 'accept', 'run1-1', [acceptRecord(1), acceptRecord(2)]);
    const outcomes = await Promise.all([store.ingest(b), store.ingest(b), store.ingest(batchOf('n2', 'accept', 'run1-1', [acceptRecord(3)]))]);
    assert.deepEqual(outcomes, ['stored', 'duplicate', 'stored'], 'the same id from another agent is another batch');
    await store.close();
    store = await openStore(path, { retentionMs: 0 });
    t.after(() => store.close());
    assert.equal(await store.ingest(b), 'duplicate');
    assert.equal((await store.query(q({ agent: 'n1' }))).length, 2);
    // ids continue after the reopen, so ingest order still holds
    await store.ingest(batchOf('n1', 'accept', 'run1-2', [acceptRecord(9)]));
    assert.deepEqual((await store.query(q({ agent: 'n1' }))).map((r) => r.client), [1, 2, 9].map((i) => acceptRecord(i).client));
  });

  test('retention deletes events older than it by their own time, and forgets their batch ids', { timeout: 30_000 }, async (t) => {
    let now = Date.UTC(2026, 11, 1, 21, 0, 0);
    const store = await openStore(newStorePlace(kind, t), { retentionMs: 3600_000, retentionEveryMs: 3600_000, now: () => now });
    t.after(() => store.close());
    const old = { ...acceptRecord(), time: '2026-12-01T19:59:59.999Z' };
    const fresh = { ...acceptRecord(), time: '2026-12-01T20:30:00.000Z' };
    await store.ingest(batchOf('n1', 'accept', 'b-1', [old, fresh]));
    await store.ingest(batchOf('n1', 'hops', 'b-2', [hopsRecord('t')])); // no time of its own: arrival counts
    assert.equal(await store.enforceRetention(), 1);
    assert.deepStrictEqual((await store.query(q({ capability: 'accept' }))).map((r) => r.time), [fresh.time]);
    now += 2 * 3600_000;
    assert.equal(await store.enforceRetention(), 2);
    assert.equal(await store.ingest(batchOf('n1', 'hops', 'b-2', [hopsRecord('t')])), 'stored', 'a batch id older than the retention is forgotten');
  });

  test('since/until select by the record time', { timeout: 30_000 }, async (t) => {
    const store = await openStore(newStorePlace(kind, t), { retentionMs: 0 });
    t.after(() => store.close());
    await store.ingest(batchOf('n1', 'http', 'b-1', [0, 1, 2].map((i) => httpRecord(i))));
    const got = await store.query(q({ capability: 'http', since: '2026-12-01T21:00:01.001Z', until: '2026-12-01T21:00:01.002Z' }));
    assert.deepEqual(got.map((r) => r.path), ['/item/1']);
  });

  test('many concurrent batches: each stored once, in their own order, ids strictly increasing', { timeout: 60_000 }, async (t) => {
    const store = await openStore(newStorePlace(kind, t), { retentionMs: 0 });
    t.after(() => store.close());
    const batches = Array.from({ length: 60 }, (_, b) => batchOf(`n${b % 3}`, 'hops', `r-${b}`, Array.from({ length: 500 }, (_, i) => hopsRecord(`${b}/${i}`))));
    const outcomes = await Promise.all([...batches, ...batches.slice(0, 10)].map((b) => store.ingest(b)));
    assert.equal(outcomes.filter((o) => o === 'stored').length, 60);
    const got = await store.query(q({ capability: 'hops', limit: '100000' }));
    assert.equal(got.length, 30_000);
    assert.equal(new Set(got.map((r) => r.target)).size, 30_000);
    assert.deepEqual(got.filter((r) => r.agent === 'n1').slice(0, 2).map((r) => r.target), ['1/0', '1/1']);
  });

  test('a batch longer than a data chunk, with nulls here and there and extreme whole numbers, comes back exactly', { timeout: 30_000 }, async (t) => {
    const store = await openStore(newStorePlace(kind, t), { retentionMs: 0 });
    t.after(() => store.close());
    const recs = Array.from({ length: 5000 }, (_, i) => ({
      ...httpRecord(i), status: i % 3 === 0 ? null : 200 + (i % 7), latency_ms: i % 5 === 0 ? null : i / 8, host: i % 11 === 0 ? null : `h${i}`,
      req_bytes: [0, -1, -(2 ** 32), 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, -123456789012, i][i % 8],
      tunnel: i % 2 ? null : { type: 'ipip', src: 'a', dst: `${i}` }, probe: i % 13 === 0 ? `p-${i}` : null,
      ...(i % 17 === 0 && { added_later: i }),
    }));
    assert.equal(await store.ingest(batchOf('n1', 'http', 'big-1', recs)), 'stored');
    const got = await store.query(q({ capability: 'http', limit: '100000' }));
    assert.deepStrictEqual(got, recs.map((r) => ({ ...r, agent: 'n1', capability: 'http' })));
  });

  test('retention forgets agent runs not heard from for longer than it', { timeout: 30_000 }, async (t) => {
    let now = Date.UTC(2026, 11, 1, 21, 0, 0);
    const store = await openStore(newStorePlace(kind, t), { retentionMs: 3600_000, retentionEveryMs: 3600_000, now: () => now });
    t.after(() => store.close());
    const runs = await AgentRuns.open(store, 3600_000);
    t.after(() => runs.close());
    runs.note('n1', 'old', { version: '0.1.0', dropped: 3 }, now - 2 * 3600_000);
    runs.note('n1', 'new', { version: '0.1.1', dropped: 0 }, now - 60_000);
    await runs.flush();
    await store.enforceRetention();
    assert.deepEqual((await store.read('SELECT run, drops FROM agent_runs ORDER BY run')).map(([r, d]) => [r, Number(d)]), [['new', 0]]);
  });
}

// ClickHouse commits a batch's rows and its batch id in two INSERTs: a collector that dies between
// them (or loses ClickHouse's answer) leaves rows without their id. The retry must not store them
// again: ClickHouse drops the repeated INSERT by its deduplication token.
nodeTest('clickhouse: a retry after the rows went in but not their batch id stores the rows once', { timeout: 30_000 }, async (t) => {
  const store = await openStore(newStorePlace('clickhouse', t), { retentionMs: 0 });
  t.after(() => store.close());
  const b = batchOf('n1', 'http', 'run9-1', [0, 1, 2].map((i) => httpRecord(i)));
  assert.equal(await store.ingest(b), 'stored');
  await store.execute([{ sql: 'DELETE FROM ingest_batches WHERE agent = $agent AND batch = $batch', params: { agent: 'n1', batch: 'run9-1' } }]);
  assert.equal(await store.ingest(b), 'stored', 'its id was not kept, so it is not known as a duplicate');
  assert.deepEqual((await store.query(q({ capability: 'http' }))).map((r) => r.path), ['/item/0', '/item/1', '/item/2']);
  assert.equal(await store.ingest(b), 'duplicate', 'and now its id is kept');
  const other = batchOf('n1', 'http', 'run9-1', [httpRecord(7)]);
  await store.execute([{ sql: 'DELETE FROM ingest_batches WHERE batch = $batch', params: { batch: 'run9-1' } }]);
  assert.equal(await store.ingest(other), 'stored');
  assert.equal((await store.query(q({ capability: 'http' }))).length, 4, 'other rows under a forgotten id are another batch');
});

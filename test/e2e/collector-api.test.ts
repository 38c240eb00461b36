// A real collector process with a real store (DuckDB file; ClickHouse in chDB for the store's part): what goes in comes out exactly, a retried
// batch is stored once, an acknowledged batch survives kill -9, and every kind of bad input is
// a 4xx with a JSON error while the good batches of the same agent are still stored.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { call, cliPath, events, freePort, ndjson, postBatch, startCollector, tempDir } from '../helpers/collector-process.js';
import { acceptRecord, acceptSummary, hopsRecord, hopsSpreadRecord, httpRecord, probeRecord } from '../helpers/collector-records.js';
import { newStoreArg, STORE_KINDS } from '../helpers/collector-stores.js';

const T = { timeout: 60_000 };

function assertError(r: { status: number; json: any; text: string }, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(typeof r.json.error.hint, 'string');
  assert.doesNotMatch(r.text, /at .*\.js:\d+/, 'no stack trace');
}

// The same bodies for each store: the DuckDB file, and ClickHouse (chDB, its own directory per collector).
for (const kind of STORE_KINDS) {
  test(`${kind}: ingest then query: every capability, plain and gzip, comes back exactly as sent`, T, async (t) => {
    const dir = tempDir(t);
    const c = await startCollector(newStoreArg(kind, dir), { track: t });
    const sent: [string, object[]][] = [
      ['accept', [acceptRecord(1), acceptSummary(), acceptRecord(2)]], ['http', [httpRecord(1), httpRecord(2)]],
      ['hops', [hopsRecord('tcp4://a:80'), hopsSpreadRecord()]], ['probe', [probeRecord()]],
    ];
    for (const [cap, recs] of sent) {
      const r = await postBatch(c.url, 'gw-1', cap, `run1-${cap}`, ndjson(recs));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { batch: `run1-${cap}`, events: recs.length, duplicate: false });
    }
    const gz = await postBatch(c.url, 'gw-2', 'http', 'run2-1', gzipSync(ndjson([httpRecord(7)])), { 'content-encoding': 'gzip' });
    assert.equal(gz.status, 200, gz.text);
    for (const [cap, recs] of sent) {
      assert.deepStrictEqual(await events(c.url, { capability: cap, agent: 'gw-1' }), recs.map((r) => ({ ...r, agent: 'gw-1', capability: cap })));
    }
    assert.deepStrictEqual(await events(c.url, { agent: 'gw-2' }), [{ ...httpRecord(7), agent: 'gw-2', capability: 'http' }]);
    assert.deepEqual((await events(c.url, { local: '10.2.0.7:8080', limit: '2' })).map((e) => e.path), ['/item/1', '/item/2']);
    assert.equal((await events(c.url, { capability: 'accept', client: acceptRecord(2).client! })).length, 1);
    assert.equal(await c.stop(), 0);
  });

  test(`${kind}: a retried batch is acknowledged again and stored once, also after a restart`, T, async (t) => {
    const dir = tempDir(t);
    const db = newStoreArg(kind, dir);
    let c = await startCollector(db, { track: t });
    const body = ndjson([hopsRecord('x'), hopsRecord('y')]);
    assert.equal((await postBatch(c.url, 'a', 'hops', 'r-1', body)).json.duplicate, false);
    assert.equal((await postBatch(c.url, 'a', 'hops', 'r-1', body)).json.duplicate, true);
    await c.stop();
    c = await startCollector(db, { track: t });
    const again = await postBatch(c.url, 'a', 'hops', 'r-1', body);
    assert.equal(again.status, 200);
    assert.equal(again.json.duplicate, true);
    assert.deepEqual((await events(c.url)).map((e) => e.target), ['x', 'y']);
    const m = await call(`${c.url}/metrics`, 'GET');
    assert.match(m.text, /tcplens_collector_batches_total\{capability="hops",outcome="duplicate"\} 1/);
    assert.match(m.text, /tcplens_collector_agent_last_seen_timestamp_seconds\{agent="a"\} \d+/);
    assert.match(m.text, /tcplens_collector_storage_bytes \d+/);
    await c.stop();
  });

  test(`${kind}: what was acknowledged is on disk: kill -9 right after each 200, then restart`, T, async (t) => {
    const dir = tempDir(t);
    const db = newStoreArg(kind, dir);
    for (let round = 0; round < 3; round++) {
      const c = await startCollector(db, { track: t });
      const r = await postBatch(c.url, 'a', 'accept', `r-${round}`, ndjson([acceptRecord(round)]));
      assert.equal(r.status, 200);
      await c.kill9();
    }
    const c = await startCollector(db, { track: t });
    assert.deepEqual((await events(c.url)).map((e) => e.client), [0, 1, 2].map((i) => acceptRecord(i).client));
    await c.stop();
  });

  test(`${kind}: bad input: 4xx with a JSON error; the bad batch stores nothing; the agent's good batches are stored`, T, async (t) => {
    const dir = tempDir(t);
    const c = await startCollector(newStoreArg(kind, dir), { track: t, args: ['--max-body', '1m'] });
    const good = ndjson([httpRecord(1)]);
    assert.equal((await postBatch(c.url, 'gw', 'http', 'r-1', good)).status, 200);
    const cases: [string, Promise<{ status: number; json: any; text: string }>, number, string][] = [
      ['malformed line', postBatch(c.url, 'gw', 'http', 'r-2', `${good}{"time": oops}\n`), 400, 'TCPLENS_ERR_BAD_EVENT'],
      ['wrong type', postBatch(c.url, 'gw', 'http', 'r-3', ndjson([httpRecord(2), { ...httpRecord(3), status: '200' }])), 400, 'TCPLENS_ERR_BAD_EVENT'],
      ['unknown capability', postBatch(c.url, 'gw', 'dns', 'r-4', good), 400, 'TCPLENS_ERR_UNKNOWN_CAPABILITY'],
      ['record of another capability', postBatch(c.url, 'gw', 'accept', 'r-5', good), 400, 'TCPLENS_ERR_BAD_EVENT'],
      ['no batch id', call(`${c.url}/v1/events?agent=gw&capability=http`, 'POST', good), 400, 'TCPLENS_ERR_BAD_QUERY'],
      ['hostile agent name', postBatch(c.url, "gw'; DROP TABLE http; --", 'http', 'r-6', good), 400, 'TCPLENS_ERR_BAD_QUERY'],
      ['not gzip', postBatch(c.url, 'gw', 'http', 'r-7', good, { 'content-encoding': 'gzip' }), 400, 'TCPLENS_ERR_BAD_EVENT'],
      ['gzip bomb', postBatch(c.url, 'gw', 'http', 'r-8', gzipSync(Buffer.alloc(8 << 20, 0x0a)), { 'content-encoding': 'gzip' }), 413, 'TCPLENS_ERR_TOO_LARGE'],
      ['declared too large', call(`${c.url}/v1/events?agent=gw&capability=http&batch=r-9`, 'POST', undefined, { 'content-length': String(100 << 20) }), 413, 'TCPLENS_ERR_TOO_LARGE'],
      ['hostile query', call(`${c.url}/v1/events?capability=http&agent=${encodeURIComponent("' OR 1=1 --")}&sql=select`, 'GET'), 400, 'TCPLENS_ERR_BAD_QUERY'],
      ['bad limit', call(`${c.url}/v1/events?limit=1e9`, 'GET'), 400, 'TCPLENS_ERR_BAD_QUERY'],
      ['unknown route', call(`${c.url}/v1/../etc/passwd`, 'GET'), 404, 'TCPLENS_ERR_NOT_FOUND'],
    ];
    for (const [name, reply, status, code] of cases) {
      await t.test(name, async () => assertError(await reply, status, code));
    }
    assert.deepEqual(await events(c.url, { agent: "' OR 1=1 --" }), []);
    assert.equal((await postBatch(c.url, 'gw', 'http', 'r-10', ndjson([httpRecord(4)]))).status, 200, 'the same agent goes on after its refused batches');
    assert.deepEqual((await events(c.url)).map((e) => e.path), ['/item/1', '/item/4']);
    await c.stop();
  });
}

/** Streams `total` bytes of valid-looking NDJSON without a length (chunked); resolves with the answer. */
function streamBody(url: string, total: number): Promise<{ status: number; json: any; text: string; sent: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    const line = Buffer.from(`${JSON.stringify(httpRecord(1))}\n`);
    const chunk = Buffer.concat(Array.from({ length: Math.ceil(65536 / line.length) }, () => line));
    const req = request(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text), text, sent }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') reject(e); });
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
}

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

test('a 100 MB body is refused with 413 while it streams, without the collector holding it', T, async (t) => {
  const dir = tempDir(t);
  const c = await startCollector(join(dir, 'e.duckdb'), { track: t });
  const before = rssKb(c.proc.pid!);
  const r = await streamBody(`${c.url}/v1/events?agent=gw&capability=http&batch=big-1`, 100 << 20);
  assertError(r, 413, 'TCPLENS_ERR_TOO_LARGE');
  const grew = rssKb(c.proc.pid!) - before;
  assert.ok(grew < 64 * 1024, `collector grew by ${grew} kB`);
  assert.deepEqual(await events(c.url), []);
  assert.equal((await postBatch(c.url, 'gw', 'http', 'small-1', ndjson([httpRecord(1)]))).status, 200);
  await c.stop();
});

test('with --token-file: ingest, every query route and metrics need the bearer token (401 otherwise)', T, async (t) => {
  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  const token = 'f'.repeat(32);
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const c = await startCollector(join(dir, 'e.duckdb'), { track: t, args: ['--token-file', tokenFile] });
  const body = ndjson([probeRecord()]);
  assertError(await postBatch(c.url, 'gw', 'probe', 'r-1', body), 401, 'TCPLENS_ERR_UNAUTHORIZED');
  assertError(await postBatch(c.url, 'gw', 'probe', 'r-1', body, { authorization: `Bearer ${'e'.repeat(32)}` }), 401, 'TCPLENS_ERR_UNAUTHORIZED');
  assertError(await postBatch(c.url, 'gw', 'probe', 'r-1', body, { authorization: `Bearer ${token}x` }), 401, 'TCPLENS_ERR_UNAUTHORIZED');
  assertError(await call(`${c.url}/v1/events`, 'GET'), 401, 'TCPLENS_ERR_UNAUTHORIZED');
  assertError(await call(`${c.url}/metrics`, 'GET'), 401, 'TCPLENS_ERR_UNAUTHORIZED');
  for (const route of ['/v1/clients/top', '/v1/connections/series', '/v1/balance', '/v1/probes?run=r', '/v1/hops/distribution', '/v1/agents']) {
    assertError(await call(`${c.url}${route}`, 'GET'), 401, 'TCPLENS_ERR_UNAUTHORIZED');
  }
  const auth = { authorization: `Bearer ${token}` };
  assert.equal((await call(`${c.url}/v1/agents`, 'GET', undefined, auth)).status, 200);
  assert.equal((await postBatch(c.url, 'gw', 'probe', 'r-1', body, auth)).status, 200);
  assert.deepStrictEqual(await events(c.url, {}, auth), [{ ...probeRecord(), agent: 'gw', capability: 'probe' }]);
  assert.equal((await call(`${c.url}/metrics`, 'GET', undefined, auth)).status, 200);
  await c.stop();
});

/** A collector that must refuse to start: how it ended (killed after limitMs if it did not) and its stderr. */
async function refusedStart(args: string[], limitMs: number): Promise<{ code: number | null; signal: string | null; err: string }> {
  const p = spawn(process.execPath, [cliPath, 'collector', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const timer = setTimeout(() => p.kill('SIGKILL'), limitMs);
  const [code, signal] = await once(p, 'exit');
  clearTimeout(timer);
  return { code, signal, err };
}

test('a non-loopback address without a token is refused at start (TCPLENS_ERR_NEEDS_TOKEN, no stack)', T, async (t) => {
  const dir = tempDir(t);
  const { code, err } = await refusedStart(['--listen', '0.0.0.0:0', '--db', join(dir, 'e.duckdb')], 20_000);
  assert.equal(code, 2, err);
  assert.match(err, /TCPLENS_ERR_NEEDS_TOKEN: .*\n {2}hint: /);
  assert.doesNotMatch(err, /^\s+at /m);
});

test('a ClickHouse store that is not there: TCPLENS_ERR_STORE at start, the password never printed', T, async (t) => {
  const dir = tempDir(t);
  const pw = join(dir, 'pw');
  writeFileSync(pw, 'hunter2-pw\n');
  const port = await freePort(); // nothing listens there: the connection is refused on loopback
  const runs = [
    ['--store', `clickhouse://tl:url-secret@127.0.0.1:${port}/fleet`],
    ['--store-url', `clickhouse://tl@127.0.0.1:${port}/fleet`, '--store-password-file', pw],
  ];
  for (const args of runs) {
    const { code, signal, err } = await refusedStart(['--listen', '127.0.0.1:0', ...args], 30_000);
    assert.notEqual(code, 0, err);
    assert.equal(signal, null, 'it stopped by itself, in time');
    assert.match(err, new RegExp(`TCPLENS_ERR_STORE: cannot reach clickhouse clickhouse://tl@127\\.0\\.0\\.1:${port}/fleet: .*\\n {2}hint: `));
    assert.doesNotMatch(err, /url-secret|hunter2/);
    assert.doesNotMatch(err, /^\s+at /m);
  }
});

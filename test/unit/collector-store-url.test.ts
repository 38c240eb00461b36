// Where the collector stores: --db / --store / --store-url and the password file, parsed into a
// store spec (never printing a password); and the ClickHouse store's parameter binding, which
// turns the builders' $name into {name:Type} without any value entering the SQL text.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectorOptions, flags } from '../../src/cli/collector.js';
import { parseFlags } from '../../src/cli/flags.js';
import { bindParams } from '../../src/collector/clickhouse/params.js';
import { dateTime64Text } from '../../src/collector/clickhouse/store.js';
import { describeStore, parseStoreUrl } from '../../src/collector/store-url.js';
import { isTcplensError } from '../../src/errors.js';

const badFlag = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => isTcplensError(e) && e.code === 'TCPLENS_ERR_BAD_FLAG' && re.test(e.message) && e.hint.length > 0);

test('store URLs: clickhouse over http(s) with defaults, chdb and duckdb paths', () => {
  assert.deepEqual(parseStoreUrl('clickhouse://tl@ch.example:8123/fleet'), { kind: 'clickhouse', url: 'http://ch.example:8123', username: 'tl', password: '', database: 'fleet' });
  assert.deepEqual(parseStoreUrl('clickhouses://ch.example'), { kind: 'clickhouse', url: 'https://ch.example:8443', username: 'default', password: '', database: 'tcplens' });
  assert.deepEqual(parseStoreUrl('clickhouse://u:p%40ss@[::1]:9000/'), { kind: 'clickhouse', url: 'http://[::1]:9000', username: 'u', password: 'p@ss', database: 'tcplens' });
  assert.equal((parseStoreUrl('clickhouse://u@h/db', 'from-file') as { password: string }).password, 'from-file');
  assert.deepEqual(parseStoreUrl('chdb:/var/lib/tl'), { kind: 'chdb', path: '/var/lib/tl', database: 'tcplens' });
  assert.deepEqual(parseStoreUrl('chdb:/var/lib/tl#other'), { kind: 'chdb', path: '/var/lib/tl', database: 'other' });
  assert.deepEqual(parseStoreUrl('duckdb:./e.duckdb'), { kind: 'duckdb', path: './e.duckdb' });
});

test('bad store URLs are coded errors that never echo a password', () => {
  const cases: [string, RegExp][] = [
    ['postgres://u:secret@h/db', /expected clickhouse:\/\//], ['clickhouse://u:secret@h/a-b', /not a plain name/],
    ['clickhouse://u:secret@h/db?x=1', /no query/], ['chdb:', /path is missing/], ['clickhouse://u:secret@h/db;drop', /not a plain name/],
  ];
  for (const [url, re] of cases) {
    badFlag(() => parseStoreUrl(url), re);
    try { parseStoreUrl(url); } catch (e) { assert.doesNotMatch((e as Error).message, /secret/, url); }
  }
  badFlag(() => parseStoreUrl('clickhouse://u:pw@h/db', 'pw2'), /give one of them/);
  const printed = describeStore(parseStoreUrl('clickhouse://tl:secret@h:8123/fleet'));
  assert.equal(printed, 'clickhouse clickhouse://tl@h:8123/fleet');
});

test('collector flags: --db or --store or --store-url, one of them; the password from a file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-pw-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pw = join(dir, 'pw');
  writeFileSync(pw, 's3cret\n');
  const opts = (...argv: string[]) => collectorOptions(parseFlags(argv, flags, 'collector'));
  assert.deepEqual(opts().db, { kind: 'duckdb', path: 'tcplens-collector.duckdb' });
  assert.deepEqual(opts('--db', 'x.duckdb').db, { kind: 'duckdb', path: 'x.duckdb' });
  assert.deepEqual(opts('--store-url', 'chdb:/tmp/c').db, { kind: 'chdb', path: '/tmp/c', database: 'tcplens' });
  assert.deepEqual(opts('--store', 'clickhouse://tl@h/db', '--store-password-file', pw).db,
    { kind: 'clickhouse', url: 'http://h:8123', username: 'tl', password: 's3cret', database: 'db' });
  badFlag(() => opts('--db', 'x', '--store', 'chdb:/c'), /--db and --store/);
  badFlag(() => opts('--store', 'chdb:/a', '--store-url', 'chdb:/b'), /--store and --store-url/);
  badFlag(() => opts('--store-password-file', pw), /only means something with --store/);
  badFlag(() => opts('--store', 'chdb:/c', '--store-password-file', pw), /only means something with --store/);
  badFlag(() => opts('--store', 'clickhouse://h/db', '--store-password-file', join(dir, 'none')), /--store-password-file .*ENOENT/);
});

test('ClickHouse parameters: $name becomes {name:Type} by the bound value; values stay out of the SQL', () => {
  const evil = "x' OR 1=1 --";
  const b = bindParams('SELECT 1 FROM t WHERE a = $agent AND ts >= fromUnixTimestamp64Micro($since) AND n < $limit AND r = $ratio AND v = $v AND f = $flag', {
    agent: evil, since: 1764622800000000n, limit: 10, ratio: 0.5, v: null, flag: true,
  });
  assert.equal(b.query, 'SELECT 1 FROM t WHERE a = {agent:String} AND ts >= fromUnixTimestamp64Micro({since:Int64}) AND n < {limit:Int64} AND r = {ratio:Float64} AND v = {v:Nullable(String)} AND f = {flag:Bool}');
  assert.ok(!b.query.includes(evil));
  assert.equal(b.query_params.agent, evil);
  assert.equal(bindParams("SELECT JSONExtractString(extra, 'netns') FROM t").query, "SELECT JSONExtractString(extra, 'netns') FROM t");
  assert.throws(() => bindParams('SELECT $missing'), /\$missing has no value/);
});

test('DateTime64 text from microseconds, to the microsecond', () => {
  assert.equal(dateTime64Text(1764622800123456), '2025-12-01 21:00:00.123456');
  assert.equal(dateTime64Text(0), '1970-01-01 00:00:00.000000');
});

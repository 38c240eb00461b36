// Schema mapping and query building: every record shape survives record -> row -> record, and
// every wrong shape is refused with TCPLENS_ERR_BAD_EVENT naming the field.
import test from 'node:test';
import assert from 'node:assert/strict';
import { CAPABILITIES, capabilitySchema, isoUtcMicros, recordToRow, rowToRecord, type CapabilityName } from '../../src/collector/schema.js';
import { buildEventSelect, parseEventQuery, parseTimeParam } from '../../src/collector/query.js';
import { splitBatchId } from '../../src/collector/store.js';
import { acceptRecord, acceptSummary, hopsRecord, hopsSpreadRecord, httpRecord, probeRecord } from '../helpers/collector-records.js';

// Values as DuckDB hands them back: times as epoch ms (bigint), BIGINT columns as bigint.
function roundTrip(cap: CapabilityName, rec: object): Record<string, unknown> {
  const s = CAPABILITIES[cap];
  const row = recordToRow(s, rec, 'line 1');
  const stored = row.values.map((v, i) => (v === null ? v : s.fields[i].type === 'time' ? BigInt(v as number) / 1000n : s.fields[i].type === 'bigint' ? BigInt(v as number) : v));
  return rowToRecord(s, stored, row.extra);
}

const shapes: [CapabilityName, object][] = [
  ['accept', acceptRecord(3)], ['accept', acceptSummary()], ['http', httpRecord(2)],
  ['hops', hopsRecord('tcp4://x:1')], ['hops', hopsSpreadRecord()], ['probe', probeRecord()],
  ['accept', { ...acceptRecord(), added_by_a_newer_agent: { x: [1, 2] } }],
];
for (const [cap, rec] of shapes) {
  test(`${cap}: a record comes back exactly as sent (${Object.keys(rec).length} keys)`, () => {
    assert.deepStrictEqual(roundTrip(cap, rec), rec);
  });
}

const wrong: [string, CapabilityName, object, RegExp][] = [
  ['a number as a string', 'accept', { ...acceptRecord(), count: '1' }, /count: expected a 32-bit whole number/],
  ['a missing field', 'http', (({ path: _p, ...r }) => r)(httpRecord()), /path: missing/],
  ['null where not allowed', 'accept', { ...acceptRecord(), local: null }, /local: must not be null/],
  ['a value outside the enum', 'hops', { ...hopsRecord('t'), status: 'great' }, /not one of open/],
  ['a time without ms', 'accept', { ...acceptRecord(), time: '2026-12-01T21:00:00Z' }, /time: expected a UTC time/],
  ['an impossible date', 'accept', { ...acceptRecord(), time: '2026-02-31T21:00:00.000Z' }, /not a valid time/],
  ['a nested field of the wrong type', 'accept', { ...acceptRecord(), toa: { kind: 254, len: 8, source: 'ack', claimed: 5 } }, /toa\.claimed: expected a string/],
  ['an unknown nested key', 'http', { ...httpRecord(), tunnel: { type: 'ipip', src: 'a', dst: 'b', x: 1 } }, /tunnel\.x: unexpected key/],
  ['a reserved key', 'probe', { ...probeRecord(), agent: 'me' }, /agent: reserved/],
  ['an array', 'probe', [probeRecord()], /expected a JSON object/],
  ['a fraction for a whole number', 'http', { ...httpRecord(), req_bytes: 1.5 }, /req_bytes: expected a whole number/],
  ['a huge string', 'http', { ...httpRecord(), path: 'x'.repeat(5000) }, /longer than 4096/],
];
for (const [name, cap, rec, re] of wrong) {
  test(`${cap}: ${name} -> TCPLENS_ERR_BAD_EVENT`, () => {
    assert.throws(() => recordToRow(CAPABILITIES[cap], rec, 'line 7'), (e: Error & { code?: string }) =>
      e.code === 'TCPLENS_ERR_BAD_EVENT' && /^line 7/.test(e.message) && re.test(e.message));
  });
}

test('an unknown capability is TCPLENS_ERR_UNKNOWN_CAPABILITY (also for Object keys such as toString)', () => {
  for (const n of ['dns', 'toString', '__proto__']) {
    assert.throws(() => capabilitySchema(n), { code: 'TCPLENS_ERR_UNKNOWN_CAPABILITY' });
  }
});

test('query: filters become bound parameters; hostile values never reach the SQL text', () => {
  const hostile = "x' OR 1=1; DROP TABLE accept; --";
  const q = parseEventQuery(new URLSearchParams({ capability: 'accept', agent: hostile, local: '10.0.0.2:80', since: '2026-12-01T21:00:00Z', limit: '5' }));
  const b = buildEventSelect(CAPABILITIES.accept, q)!;
  assert.doesNotMatch(b.sql, /DROP|OR 1=1|10\.0\.0\.2/);
  assert.match(b.sql, /agent = \$agent AND "local" = \$local AND ts >= make_timestamp\(\$since::BIGINT\) ORDER BY id LIMIT \$limit$/);
  assert.deepEqual(b.params, { agent: hostile, local: '10.0.0.2:80', since: 1796158800000000n, limit: 5 });
});

test('query: http matches local= against its server column; hops has no local and is skipped', () => {
  const q = parseEventQuery(new URLSearchParams({ local: '10.2.0.7:8080' }));
  assert.match(buildEventSelect(CAPABILITIES.http, q)!.sql, /"server" = \$local/);
  assert.equal(buildEventSelect(CAPABILITIES.hops, q), null);
});

const badQueries: [string, Record<string, string>, string][] = [
  ['an unknown parameter', { sql: 'select 1' }, 'TCPLENS_ERR_BAD_QUERY'],
  ['a limit too large', { limit: '1000001' }, 'TCPLENS_ERR_BAD_QUERY'],
  ['a negative limit', { limit: '-1' }, 'TCPLENS_ERR_BAD_QUERY'],
  ['a time that is no time', { since: 'yesterday' }, 'TCPLENS_ERR_BAD_QUERY'],
  ['local= on hops', { capability: 'hops', local: '1.2.3.4:5' }, 'TCPLENS_ERR_BAD_QUERY'],
  ['an unknown capability', { capability: 'dns' }, 'TCPLENS_ERR_UNKNOWN_CAPABILITY'],
  ['a very long value', { agent: 'a'.repeat(300) }, 'TCPLENS_ERR_BAD_QUERY'],
];
for (const [name, params, code] of badQueries) {
  test(`query: ${name} -> ${code}`, () => {
    assert.throws(() => parseEventQuery(new URLSearchParams(params)), { code });
  });
}

test('query: a parameter given twice is refused', () => {
  assert.throws(() => parseEventQuery(new URLSearchParams('agent=a&agent=b')), { code: 'TCPLENS_ERR_BAD_QUERY' });
});

test('time parameters: ISO, epoch seconds, an age', () => {
  assert.equal(parseTimeParam('since', '2026-12-01T21:00:00.000Z', 0), 1796158800000000n);
  assert.equal(parseTimeParam('since', '1796158800.5', 0), 1796158800500000n);
  assert.equal(parseTimeParam('since', '15m', 1_000_000_000), BigInt(1_000_000_000 - 900_000) * 1000n);
});

test('batch ids: run-seq splits, anything else is kept whole', () => {
  assert.deepEqual(splitBatchId('h1k2-ab12-42'), { run: 'h1k2-ab12', seq: 42n });
  assert.deepEqual(splitBatchId('nightly'), { run: null, seq: null });
});

test('time check: the same verdict and value as Date.parse plus a toISOString round trip, on valid and impossible dates', () => {
  const reference = (v: string): number | null => {
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(v)) return null;
    const ms = Date.parse(v);
    return Number.isNaN(ms) || new Date(ms).toISOString() !== v ? NaN : ms * 1000;
  };
  let seed = 7;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  const pad = (x: number, n: number) => String(x).padStart(n, '0');
  const cases = ['2026-02-29T00:00:00.000Z', '2024-02-29T23:59:59.999Z', '2000-02-29T12:00:00.000Z', '1900-02-29T12:00:00.000Z',
    '0000-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z', '1969-12-31T23:59:59.999Z', '2026-12-01T24:00:00.000Z', '2026-13-01T00:00:00.000Z',
    '2026-00-10T00:00:00.000Z', '2026-04-31T00:00:00.000Z', '2026-12-01T21:60:00.000Z', '2026-12-01T21:00:60.000Z', '2026-12-01 21:00:00.000Z', ' 2026-12-01T21:00:00.000Z'];
  for (let i = 0; i < 20_000; i++) {
    cases.push(`${pad(rand(10000), 4)}-${pad(rand(14), 2)}-${pad(rand(33), 2)}T${pad(rand(26), 2)}:${pad(rand(61), 2)}:${pad(rand(61), 2)}.${pad(rand(1000), 3)}Z`);
  }
  for (const v of cases) assert.deepEqual(isoUtcMicros(v), reference(v), v);
});

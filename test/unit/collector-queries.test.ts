// The query routes' builders, pure: query strings are checked (coded errors for every bad shape),
// user values only ever reach SQL as bound parameters, and rows are shaped into the documented
// answers (probe order, names from the data, series grouping, expect weights). The SQL itself runs
// against DuckDB in test/e2e/collector-routes.test.ts.
import test from 'node:test';
import assert from 'node:assert/strict';
import { isTcplensError } from '../../src/errors.js';
import { parseTimeParam } from '../../src/collector/query.js';
import { buildAgents, parseAgents } from '../../src/collector/queries/agents.js';
import { buildBalanceHistogram, buildBalanceValues, parseBalance, parseExpect, percentileTargets, pickPercentiles, shapeBalance } from '../../src/collector/queries/balance.js';
import { quantile } from '../../src/capabilities/http/balance.js';
import { buildSeries, buildTopClients, parseSeries, parseTopClients, shapeSeries, shapeTopClients, TOP_DEFAULT } from '../../src/collector/queries/connections.js';
import { buildHops, parseHops, shapeHops } from '../../src/collector/queries/hops.js';
import { buildProbeSent, buildProbeSightings, parseProbes, shapeProbes } from '../../src/collector/queries/probes.js';
import { spreadOf, spreadOfTallies, type Choice } from '../../src/capabilities/http/balance.js';
import { CappedLabels, CollectorMetrics, MAX_SERVICE_LABELS, OTHER_LABEL } from '../../src/collector/metrics.js';
import { CAPABILITIES, recordToRow } from '../../src/collector/schema.js';
import { acceptRecord, httpRecord } from '../helpers/collector-records.js';

const NOW = Date.UTC(2026, 11, 1, 22, 0, 0);
const sp = (q: string) => new URLSearchParams(q);

function badQuery(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => isTcplensError(e) && e.code === 'TCPLENS_ERR_BAD_QUERY' && re.test(e.message) && e.hint.length > 0);
}

test('times: ISO, epoch seconds, epoch milliseconds (13 digits) and ages', () => {
  assert.equal(parseTimeParam('since', '2026-12-01T21:00:00Z', NOW), BigInt(Date.UTC(2026, 11, 1, 21)) * 1000n);
  assert.equal(parseTimeParam('since', '1764622800', NOW), 1764622800_000000n);
  assert.equal(parseTimeParam('since', '1764622800123', NOW), 1764622800123_000n);
  assert.equal(parseTimeParam('since', '15m', NOW), BigInt(NOW - 900_000) * 1000n);
  badQuery(() => parseTimeParam('until', '17646228001234', NOW), /until=.*not a time/);
});

test('defaults and bounds of each route\'s parameters', () => {
  assert.deepEqual(parseTopClients(sp(''), NOW), { sinceUs: null, untilUs: null, agent: null, service: null, limit: TOP_DEFAULT });
  assert.deepEqual(['10s', '1m', '2h', '1d', '45'].map((s) => parseSeries(sp(`step=${s}`), NOW).stepMs), [10_000, 60_000, 7_200_000, 86_400_000, 45_000]);
  assert.equal(parseSeries(sp(''), NOW).stepMs, 60_000);
  assert.equal(parseBalance(sp(''), NOW).gatewayPort, 80);
  assert.deepEqual([...parseBalance(sp('expect=lb=70,30&expect=gw1=1,2,0.5'), NOW).expect], [['lb', [70, 30]], ['gw1', [1, 2, 0.5]]]);
  assert.deepEqual(parseProbes(sp('run=3fa2c1d0&gateway_port=8080'), NOW), { sinceUs: null, untilUs: null, agent: null, run: '3fa2c1d0', gatewayPort: 8080 });
});

test('every bad query string is a coded error that names the parameter', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => parseTopClients(sp('limit=0')), /limit=0/],
    [() => parseTopClients(sp('limit=1001')), /limit=1001/],
    [() => parseTopClients(sp('top=5')), /unknown query parameter 'top'/],
    [() => parseTopClients(sp('service=a&service=b')), /'service' given more than once/],
    [() => parseSeries(sp('step=500ms')), /step=500ms/],
    [() => parseSeries(sp('step=2d')), /step=2d/],
    [() => parseSeries(sp('step=-1s')), /step=-1s/],
    [() => parseBalance(sp('expect=lb')), /expect=lb/],
    [() => parseBalance(sp('expect=lb=1,x')), /expect=lb=1,x/],
    [() => parseBalance(sp('expect=lb=1&expect=lb=2')), /given twice/],
    [() => parseBalance(sp('expect=a%20b=1,1')), /expect=a b=1,1/],
    [() => parseBalance(sp('gateway_port=0')), /gateway_port=0/],
    [() => parseProbes(sp('')), /run= is required/],
    [() => parseProbes(sp("run=r1'--")), /not a run id/],
    [() => parseHops(sp('service=x')), /unknown query parameter/],
    [() => parseAgents(sp(`agent=${'a'.repeat(300)}`)), /longer than/],
    [() => parseAgents(sp('since=tomorrow')), /since=tomorrow: not a time/],
  ];
  for (const [fn, re] of cases) badQuery(fn, re);
});

test('user values reach the SQL only as bound parameters', () => {
  const evil = "x' OR 1=1; DROP TABLE accept; --";
  const e = encodeURIComponent(evil);
  const built = [
    buildTopClients(parseTopClients(sp(`service=${e}&agent=${e}`), NOW)),
    buildSeries(parseSeries(sp(`service=${e}&agent=${e}`), NOW)),
    buildBalanceHistogram(parseBalance(sp(`agent=${e}`), NOW)),
    buildBalanceValues(parseBalance(sp(`agent=${e}`), NOW), [3, 4]),
    buildHops(parseHops(sp(`agent=${e}`), NOW)),
    buildAgents(parseAgents(sp(`agent=${e}`), NOW)),
    buildProbeSent(parseProbes(sp(`run=r1&agent=${e}`), NOW)),
    buildProbeSightings(parseProbes(sp(`run=r1&agent=${e}`), NOW)),
  ];
  for (const b of built) {
    assert.ok(!b.sql.includes(evil) && !b.sql.includes('OR 1=1'), b.sql);
    assert.ok(Object.values(b.params).includes(evil), 'the value is a parameter');
    for (const name of Object.keys(b.params)) assert.match(b.sql, new RegExp(`\\$${name}\\b`), `$${name} is used`);
  }
  const probes = buildProbeSightings(parseProbes(sp('run=r1'), NOW));
  assert.equal(probes.params.prefix, 'r1-', 'r1 does not take r10\'s probes');
});

test('shapes: top clients and series rows into the documented answers', () => {
  assert.deepEqual(shapeTopClients([['192.0.2.1', '10.0.0.2:80', 7n, 2n, BigInt(Date.UTC(2026, 11, 1, 21))]]),
    { clients: [{ client: '192.0.2.1', service: '10.0.0.2:80', connections: 7, agents: 2, last: '2026-12-01T21:00:00.000Z' }] });
  const q = parseSeries(sp('step=10s'), NOW);
  assert.deepEqual(shapeSeries(q, [['a:1', 0n, 1n], ['a:1', 10_000n, 2n], ['b:2', 0n, 3n]]),
    { step_s: 10, series: [{ service: 'a:1', points: [[0, 1], [10_000, 2]] }, { service: 'b:2', points: [[0, 3]] }] });
  assert.deepEqual(shapeHops([[3, 2n], [4, 1n], [null, 5n]]), { buckets: [{ hops: 3, count: 2 }, { hops: 4, count: 1 }], targets: 8 });
});

test('probes: ordered by sequence number; a name from the data cannot reach a prototype', () => {
  const q = parseProbes(sp('run=r'), NOW);
  const sent = [['r-10', 200, 1.5, '__proto__'], ['r-2', null, null, null]];
  const seen = [['r-2', 'gw1', null, 'in', 'c:1', 'g:80', 4, 503, 'gw1'], ['r-2', 'gw1', null, 'out', 'g:2', 'p:9', 3, 503, 'gw1']];
  const out = shapeProbes(q, sent, seen);
  assert.deepEqual(out.probes.map((p) => [p.id, p.status, p.latency_ms, p.gateway, p.pod]), [['r-2', null, null, 'gw1', 'p:9'], ['r-10', 200, 1.5, null, '__proto__']],
    'the sender\'s record (even without an answer) wins over what a hop saw');
  assert.equal(JSON.stringify(out.distribution), '{"gateways":{"gw1":1},"pods":{"p:9":1,"__proto__":1}}');
  assert.equal(Object.getPrototypeOf(out.distribution.pods), null);
});

test('balance: counted tallies give what spreadOf gives on the choices; expect weights follow backend names', () => {
  const choices: Choice[] = [...Array(30)].map((_, i) => ({ tier: 1, chooser: 'lb', backend: i % 3 ? 'gw1' : 'gw2', latencyMs: i, error: i === 4 }));
  const expected = new Map([['gw1', 1], ['gw2', 1], ['gw3', 1]]);
  const lat = (b: string) => choices.filter((c) => c.backend === b).map((c) => c.latencyMs!).sort((x, y) => x - y);
  const tally = (name: string) => ({ name, requests: lat(name).length, p50_ms: lat(name)[Math.ceil(lat(name).length / 2) - 1], p99_ms: lat(name).at(-1)!, errors: name === 'gw1' ? 1 : 0 });
  assert.deepStrictEqual(spreadOfTallies(1, 'lb', [tally('gw2'), tally('gw1')], expected), spreadOf(1, 'lb', choices, expected));
  const rows = [[1, 'lb', 'gw1', 20n, 1, 2, 0n], [1, 'lb', 'gw2', 10n, 1, 2, 0n]];
  const q = (s: string) => parseBalance(sp(s), NOW);
  const shaped = shapeBalance(q('expect=lb=2,1'), rows);
  assert.deepEqual(shaped.tiers[0].backends.map((b) => [b.name, b.expected_share]), [['gw1', 2 / 3], ['gw2', 1 / 3]]);
  assert.deepEqual(shaped.verdict, { balanced: true, tier: null, node: null, samples: 30, confident: false });
  badQuery(() => shapeBalance(q('expect=lb=1,1,1'), rows), /3 weights for 2 backends/);
  badQuery(() => shapeBalance(q('expect=gw9=1,1'), rows), /no chooser of that name/);
  assert.deepEqual(parseExpect([]), new Map());
});

test('metrics: per-service and per-backend labels are capped, the rest count under "other"', async () => {
  const labels = new CappedLabels(2);
  assert.deepEqual(['a', 'b', 'c', 'a', 'd'].map((v) => labels.label(v)), ['a', 'b', OTHER_LABEL, 'a', OTHER_LABEL]);
  const m = new CollectorMetrics(() => 0);
  const rows = [...Array(MAX_SERVICE_LABELS + 5)].map((_, i) => recordToRow(CAPABILITIES.accept, { ...acceptRecord(i), local: `10.0.${i >> 8}.${i & 255}:80` }, 'x'));
  m.records(CAPABILITIES.accept, rows);
  m.records(CAPABILITIES.http, [recordToRow(CAPABILITIES.http, { ...httpRecord(1), status: 999 }, 'x')]);
  const text = await m.registry.metrics();
  const services = text.split('\n').filter((l) => l.startsWith('tcplens_service_connections_total{'));
  assert.equal(services.length, MAX_SERVICE_LABELS + 1);
  assert.ok(services.includes(`tcplens_service_connections_total{service="${OTHER_LABEL}"} 5`), services.at(-1));
  assert.match(text, /tcplens_backend_requests_total\{backend="10\.2\.0\.7:8080",class="other"\} 1/, 'a status out of range is no label of its own');
});

test('balance percentiles from bucket counts and the values of the wanted buckets: exactly the nearest rank', () => {
  // What the two queries return, built here from known exchanges: any non-decreasing bucket
  // function gives the same answer, so a coarse one (many values per bucket, ties) is used.
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const exchanges = Array.from({ length: 5000 }, (_, i) => ({
    point: `gw${i % 3}`, server: i % 2 ? `10.0.0.${i % 5}:8080` : `10.1.0.${i % 3}:80`,
    latency: i % 41 === 0 ? null : Math.round((i % 7 === 0 ? 0 : -8 * Math.log(1 - rand())) * 1000) / 1000,
    bad: i % 13 === 0,
  }));
  const bucketOf = (v: number) => Math.floor(Math.sqrt(v));
  const leg = (server: string) => (server.endsWith(':80') ? 'in' : 'out');
  const hist = new Map<string, unknown[]>();
  for (const e of exchanges) {
    const b = e.latency === null ? null : bucketOf(e.latency);
    const k = `${e.point} ${e.server} ${b}`;
    const row = hist.get(k) ?? [e.point, e.server, leg(e.server), b, 0, 0, 0];
    row[4] = (row[4] as number) + (e.latency === null ? 0 : 1); row[5] = (row[5] as number) + 1; row[6] = (row[6] as number) + (e.bad ? 1 : 0);
    hist.set(k, row);
  }
  const plan = percentileTargets([...hist.values()]);
  const wanted = new Set(plan.buckets);
  const read = exchanges.filter((e) => e.latency !== null && wanted.has(bucketOf(e.latency)));
  assert.ok(read.length < exchanges.length / 2, 'only the wanted buckets are read');
  // as buildBalanceValues returns them: a row per point, server and bucket, its distinct
  // latencies with their counts as JSON, in no particular order
  const lists = new Map<string, { row: unknown[]; counts: Map<number, number> }>();
  for (const e of read) {
    const k = `${e.point} ${e.server} ${bucketOf(e.latency!)}`;
    if (!lists.has(k)) lists.set(k, { row: [e.point, e.server, leg(e.server), bucketOf(e.latency!)], counts: new Map() });
    const c = lists.get(k)!.counts;
    c.set(e.latency!, (c.get(e.latency!) ?? 0) + 1);
  }
  const values = [...lists.values()].map(({ row, counts }) => [...row, JSON.stringify([...counts].reverse())]);
  assert.ok(values.some((r) => (JSON.parse(r[4] as string) as number[][]).some(([, n]) => n > 1)), 'ties are counted, not repeated');
  const got = pickPercentiles(plan, values)!.map((r) => JSON.stringify(r)).sort();
  const expected = new Map<string, { row: unknown[]; lat: number[] }>();
  for (const e of exchanges) {
    const [tier, chooser, name] = leg(e.server) === 'in' ? [1, 'lb', e.point] : [2, e.point, e.server];
    const k = `${tier} ${chooser} ${name}`;
    const x = expected.get(k) ?? { row: [tier, chooser, name, 0, null, null, 0], lat: [] };
    x.row[3] = (x.row[3] as number) + 1; x.row[6] = (x.row[6] as number) + (e.bad ? 1 : 0);
    if (e.latency !== null) x.lat.push(e.latency);
    expected.set(k, x);
  }
  const want = [...expected.values()].map(({ row, lat }) => {
    const s = lat.sort((a, b) => a - b);
    return JSON.stringify([row[0], row[1], row[2], row[3], quantile(s, 0.5), quantile(s, 0.99), row[6]]);
  }).sort();
  assert.equal(got.length, 3 + 15);
  assert.deepEqual(got, want);
  // a bucket holding one latency more or less than counted: no answer (the caller counts again)
  const first = JSON.parse(values[0][4] as string) as [number, number][];
  const withFirst = (vs: [number, number][]) => [[...values[0].slice(0, 4), JSON.stringify(vs)], ...values.slice(1)];
  assert.equal(pickPercentiles(percentileTargets([...hist.values()]), withFirst(first.slice(1))), null);
  assert.equal(pickPercentiles(percentileTargets([...hist.values()]), withFirst([...first, [first[0][0], 1]])), null);
  // no latency at all: no percentile, no bucket to read
  const none = percentileTargets([['gw1', '10.1.0.1:80', 'in', null, 0, 4, 1]]);
  assert.deepEqual(none.buckets, []);
  assert.deepEqual(pickPercentiles(none, []), [[1, 'lb', 'gw1', 4, null, null, 1]]);
});

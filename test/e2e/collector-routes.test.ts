// The query routes against a real collector process, once with each store (a DuckDB file, and
// ClickHouse embedded by chDB: one suite, the same bodies): known records go in through
// the real ingest route, and each route answers exactly what they mean (top clients, connection
// series, balance with the same math as `tcplens http --balance`, probe paths, hop distances,
// agents with version and drops); per-service metrics; hostile query strings get a 400 JSON error
// and change nothing.
import test from 'node:test';
import assert from 'node:assert/strict';
import { balance, type Choice } from '../../src/capabilities/http/balance.js';
import { call, ndjson, startCollector, tempDir, type Reply } from '../helpers/collector-process.js';
import { acceptRecord, hopsRecord, httpRecord, probeRecord } from '../helpers/collector-records.js';
import { newStoreArg, STORE_KINDS, type StoreKind } from '../helpers/collector-stores.js';

const T = { timeout: 60_000 };
const at = (s: string) => `2026-12-01T21:${s}.000Z`;

function post(base: string, agent: string, capability: string, batch: string, recs: object[], extra: Record<string, string> = {}): Promise<Reply> {
  return call(`${base}/v1/events?${new URLSearchParams({ agent, capability, batch, ...extra })}`, 'POST', ndjson(recs));
}

async function get(base: string, path: string): Promise<any> {
  const r = await call(`${base}${path}`, 'GET');
  assert.equal(r.status, 200, `${path}: ${r.text}`);
  return r.json;
}

const conn = (local: string, client: string | null, peer: string, time: string, more: object = {}) =>
  ({ ...acceptRecord(1), local, client, peer, time, ...more });

/** One http exchange as seen by a gateway agent, and the choice it stands for. */
interface Sighting { agent: string; rec: object; choice: Choice }
const ex = (agent: string, server: string, latency: number | null, time: string, choice: Omit<Choice, 'latencyMs' | 'error'>, more: { probe?: string; status?: number | null; error?: string; netns?: string } = {}): Sighting => {
  const rec = { ...httpRecord(1), client: '10.1.0.1:40000', server, latency_ms: latency, time, tunnel: null, probe: more.probe ?? null,
    status: more.status === undefined ? 200 : more.status, error: more.error ?? null, ...(more.netns && { netns: more.netns }) };
  return { agent, rec, choice: { ...choice, latencyMs: latency, error: rec.error !== null || (rec.status ?? 0) >= 500 } };
};

const GW1 = '10.1.0.11:80', GW2 = '10.1.0.12:80', POD_A = '10.1.200.6:29090', POD_B = '10.1.200.10:29090';
const lb = (backend: string) => ({ tier: 1 as const, chooser: 'lb', backend });
const gw = (chooser: string, backend: string) => ({ tier: 2 as const, chooser, backend });
const SIGHTINGS: Sighting[] = [
  ex('gw1', GW1, 1, at('00:01'), lb('gw1'), { probe: 'r1-0' }),
  ex('gw1', POD_A, 0.5, at('00:01'), gw('gw1', POD_A), { probe: 'r1-0' }),
  ex('gw2', GW2, 2, at('00:02'), lb('gw2'), { probe: 'r1-1' }),
  ex('node-a', GW2, 5, at('00:03'), lb('node-a/tl-gw-gw2'), { probe: 'r1-2', netns: 'tl-gw-gw2' }),
  ex('node-a', POD_B, 4, at('00:03'), gw('node-a/tl-gw-gw2', POD_B), { probe: 'r1-2', netns: 'tl-gw-gw2', status: 502 }),
  ex('gw1', GW1, 3, at('00:04'), lb('gw1'), { probe: 'r10-0' }),
  ex('gw1', GW1, null, at('00:05'), lb('gw1'), { status: null, error: 'no_response' }),
  ex('gw1', POD_A, 0.7, at('00:05'), gw('gw1', POD_A)),
  ex('gw1', POD_B, 0.9, at('00:06'), gw('gw1', POD_B)),
  ex('gw2', POD_A, 1.5, at('00:07'), gw('gw2', POD_A)),
];

async function loaded(kind: StoreKind, t: { after: (fn: () => Promise<unknown>) => void } & Parameters<typeof tempDir>[0]) {
  const c = await startCollector(newStoreArg(kind, tempDir(t)), { track: t });
  const ok = async (r: Promise<Reply>) => assert.equal((await r).status, 200, (await r).text);
  // accept: one client on two ports and in a merge window's summary, seen by two agents; a client
  // without TOA (its peer counts); an IPv6 client of another service.
  await ok(post(c.url, 'web-1', 'accept', 'w1a-1', [
    conn('10.0.0.2:80', '192.0.2.1:1025', '10.0.0.9:4000', at('00:00')),
    conn('10.0.0.2:443', '[fd00::5]:2222', '10.0.0.9:4001', at('00:05')),
    conn('10.0.0.2:80', '192.0.2.1:1026', '10.0.0.9:4002', at('00:30')),
  ], { version: '0.1.0', dropped: '0' }));
  await ok(post(c.url, 'web-1', 'accept', 'w1a-2', [
    conn('10.0.0.2:80', '192.0.2.1:1026', '10.0.0.9:4002', at('01:10'), { summary: true, count: 5, last: at('01:15') }),
    conn('10.0.0.2:80', null, '10.0.0.9:4003', at('02:00'), { toa: null, trusted: null }),
  ], { version: '0.1.0', dropped: '3' }));
  await ok(post(c.url, 'web-1', 'accept', 'w1b-1', [conn('10.0.0.2:80', '192.0.2.1:1', '10.0.0.9:1', at('02:30'))], { version: '0.2.0', dropped: '2' }));
  await ok(post(c.url, 'web-2', 'accept', 'w2-1', [conn('10.0.0.2:80', '192.0.2.1:2000', '10.0.0.8:5000', at('00:40'))]));
  for (const agent of ['gw1', 'gw2', 'node-a']) {
    await ok(post(c.url, agent, 'http', `${agent}-1`, SIGHTINGS.filter((s) => s.agent === agent).map((s) => s.rec)));
  }
  await ok(post(c.url, 'client1', 'probe', 'c1-1', [probeRecord(0, 'r1', 'pod1'), { ...probeRecord(1, 'r1', 'pod2'), latency_ms: 9 }, probeRecord(0, 'r10', 'pod9')]));
  await ok(post(c.url, 'h1', 'hops', 'h1-1', [{ ...hopsRecord('a'), address: '10.0.0.7:80', hops: 3 }, { ...hopsRecord('b'), address: '10.0.0.8:80', hops: 3 },
    { ...hopsRecord('c'), address: '10.0.0.9:80', status: 'timeout', ttl: null, initial_ttl: null, hops: null, connect_ms: null, error: 'TCPLENS_ERR_TIMEOUT' }]));
  await ok(post(c.url, 'h1', 'hops', 'h1-2', [{ ...hopsRecord('a'), address: '10.0.0.7:80', hops: 4 }]));
  await ok(post(c.url, 'h2', 'hops', 'h2-1', [{ ...hopsRecord('a'), address: '10.0.0.7:80', hops: 3 }]));
  return c;
}

for (const kind of STORE_KINDS) {
test(`${kind}: each route answers exactly what the stored records mean`, T, async (t) => {
  const started = Date.now();
  const c = await loaded(kind, t);

  await t.test('clients/top: real client else peer, without port; merged counts; agents; last', async () => {
    assert.deepStrictEqual(await get(c.url, '/v1/clients/top'), { clients: [
      { client: '192.0.2.1', service: '10.0.0.2:80', connections: 8, agents: 2, last: at('02:30') },
      { client: '10.0.0.9', service: '10.0.0.2:80', connections: 1, agents: 1, last: at('02:00') },
      { client: 'fd00::5', service: '10.0.0.2:443', connections: 1, agents: 1, last: at('00:05') },
    ] });
    assert.deepStrictEqual((await get(c.url, '/v1/clients/top?service=10.0.0.2:443')).clients.map((x: any) => x.client), ['fd00::5']);
    assert.deepStrictEqual((await get(c.url, '/v1/clients/top?limit=1&agent=web-2')).clients,
      [{ client: '192.0.2.1', service: '10.0.0.2:80', connections: 1, agents: 1, last: at('00:40') }]);
    assert.deepStrictEqual((await get(c.url, `/v1/clients/top?since=${Date.parse(at('01:00'))}&until=${encodeURIComponent(at('02:00'))}`)).clients,
      [{ client: '192.0.2.1', service: '10.0.0.2:80', connections: 4, agents: 1, last: at('01:15') }], 'since (epoch ms) inclusive, until (ISO) exclusive');
  });

  await t.test('connections/series: per service per step, a summary counted where its window started', async () => {
    const m = (s: string) => Date.parse(at(s));
    assert.deepStrictEqual(await get(c.url, '/v1/connections/series'), { step_s: 60, series: [
      { service: '10.0.0.2:443', points: [[m('00:00'), 1]] },
      { service: '10.0.0.2:80', points: [[m('00:00'), 3], [m('01:00'), 4], [m('02:00'), 2]] },
    ] });
    assert.deepStrictEqual(await get(c.url, '/v1/connections/series?service=10.0.0.2:80&step=2m'),
      { step_s: 120, series: [{ service: '10.0.0.2:80', points: [[m('00:00'), 7], [m('02:00'), 2]] }] });
  });

  await t.test('balance: the tiers and verdict `http --balance` computes from the same choices', async () => {
    const choices = SIGHTINGS.map((s) => s.choice);
    assert.deepStrictEqual(await get(c.url, '/v1/balance'), JSON.parse(JSON.stringify(balance(choices))));
    const weights = new Map([['lb', new Map([['gw1', 2], ['gw2', 1], ['node-a/tl-gw-gw2', 1]])]]);
    assert.deepStrictEqual(await get(c.url, '/v1/balance?expect=lb=2,1,1'), JSON.parse(JSON.stringify(balance(choices, weights))));
    const only = (await get(c.url, '/v1/balance?agent=gw2')).tiers.map((x: any) => [x.tier, x.chooser, x.backends.map((b: any) => b.name)]);
    assert.deepStrictEqual(only, [[1, 'lb', ['gw2']], [2, 'gw2', [POD_A]]]);
  });

  await t.test('probes: each probe of the run with its hops, gateway and pod; another run left out', async () => {
    const hop = (s: Sighting, leg: string) => {
      const r = s.rec as any;
      return { agent: s.agent, netns: r.netns ?? null, leg, client: r.client, server: r.server, latency_ms: r.latency_ms };
    };
    assert.deepStrictEqual(await get(c.url, '/v1/probes?run=r1'), {
      run: 'r1',
      probes: [
        { id: 'r1-0', status: 200, latency_ms: 3.5, hops: [hop(SIGHTINGS[0], 'in'), hop(SIGHTINGS[1], 'out')], gateway: 'gw1', pod: 'pod1' },
        { id: 'r1-1', status: 200, latency_ms: 9, hops: [hop(SIGHTINGS[2], 'in')], gateway: 'gw2', pod: 'pod2' },
        { id: 'r1-2', status: 200, latency_ms: 5, hops: [hop(SIGHTINGS[3], 'in'), hop(SIGHTINGS[4], 'out')], gateway: 'node-a/tl-gw-gw2', pod: POD_B },
      ],
      distribution: { gateways: { gw1: 1, gw2: 1, 'node-a/tl-gw-gw2': 1 }, pods: { pod1: 1, pod2: 1, [POD_B]: 1 } },
    });
    assert.deepStrictEqual(await get(c.url, '/v1/probes?run=nothing'), { run: 'nothing', probes: [], distribution: { gateways: {}, pods: {} } });
  });

  await t.test('hops/distribution: the latest distance per agent and address', async () => {
    assert.deepStrictEqual(await get(c.url, '/v1/hops/distribution'), { buckets: [{ hops: 3, count: 2 }, { hops: 4, count: 1 }], targets: 4 });
    assert.deepStrictEqual(await get(c.url, '/v1/hops/distribution?agent=h2'), { buckets: [{ hops: 3, count: 1 }], targets: 1 });
  });

  await t.test('agents: capabilities, last seen, batches, events, version of the latest run, drops over runs', async () => {
    const { agents } = await get(c.url, '/v1/agents');
    for (const a of agents) {
      const ms = Date.parse(a.last_seen);
      assert.ok(ms >= started - 1000 && ms <= Date.now() + 1000, `${a.name} last seen ${a.last_seen}`);
      delete a.last_seen;
    }
    const a = (name: string, capabilities: string[], batches: number, events: number, version: string | null = null, drops = 0) => ({ name, capabilities, version, batches, events, drops });
    assert.deepStrictEqual(agents, [
      a('client1', ['probe'], 1, 3), a('gw1', ['http'], 1, 6), a('gw2', ['http'], 1, 2), a('h1', ['hops'], 2, 4), a('h2', ['hops'], 1, 1),
      a('node-a', ['http'], 1, 2), a('web-1', ['accept'], 3, 6, '0.2.0', 5), a('web-2', ['accept'], 1, 1),
    ]);
  });

  await t.test('metrics: per-service connections and per-backend requests and latency', async () => {
    const m = (await call(`${c.url}/metrics`, 'GET')).text;
    assert.match(m, /^tcplens_service_connections_total\{service="10\.0\.0\.2:80"\} 9$/m);
    assert.match(m, /^tcplens_backend_requests_total\{backend="10\.1\.0\.11:80",class="error"\} 1$/m);
    assert.match(m, /^tcplens_backend_requests_total\{backend="10\.1\.200\.10:29090",class="5xx"\} 1$/m);
    assert.match(m, /^tcplens_backend_latency_seconds_count\{backend="10\.1\.200\.6:29090"\} 3$/m);
  });
  assert.equal(await c.stop(), 0);
});

test(`${kind}: balance over thousands of exchanges and hours: exactly the percentiles \`http --balance\` computes`, T, async (t) => {
  const c = await startCollector(newStoreArg(kind, tempDir(t)), { track: t });
  let seed = 11;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const T0 = Date.parse('2026-12-01T18:20:00.000Z');
  const sightings = Array.from({ length: 4000 }, (_, i) => {
    const agent = `gw${i % 3}`, time = new Date(T0 + i * 2_500).toISOString(); // 18:20 .. 21:06
    const latency = i % 41 === 0 ? null : i % 59 === 0 ? 0 : Math.round(-(i % 2 ? 4 : 9) * Math.log(1 - rand()) * 1000) / 1000;
    const more = { status: latency === null ? null : i % 31 === 0 ? 502 : 200, ...(latency === null && { error: 'no_response' }) };
    return i % 2 ? ex(agent, `10.1.200.${i % 5}:29090`, latency, time, gw(agent, `10.1.200.${i % 5}:29090`), more) : ex(agent, `10.1.0.1${i % 3}:80`, latency, time, lb(agent), more);
  });
  for (let b = 0; b < 4; b++) {
    for (const agent of ['gw0', 'gw1', 'gw2']) {
      const mine = sightings.slice(b * 1000, (b + 1) * 1000).filter((s) => s.agent === agent);
      const posted = await post(c.url, agent, 'http', `${agent}-many-${b}`, mine.map((s) => s.rec));
      assert.equal(posted.status, 200, posted.text);
    }
  }
  for (const [since, until] of [[null, null], ['2026-12-01T18:47:13.500Z', null], ['2026-12-01T18:47:13.500Z', '2026-12-01T20:31:01.000Z']]) {
    const inRange = sightings.filter((s) => { const ms = Date.parse((s.rec as any).time); return (!since || ms >= Date.parse(since)) && (!until || ms < Date.parse(until)); });
    const qs = new URLSearchParams({ ...(since && { since }), ...(until && { until }) });
    const got = await get(c.url, `/v1/balance?${qs}`);
    assert.deepStrictEqual(got, JSON.parse(JSON.stringify(balance(inRange.map((s) => s.choice)))), `since ${since} until ${until}`);
    assert.equal(got.tiers.flatMap((x: any) => x.backends).length, 3 + 15);
  }
});

test(`${kind}: hostile and bad query strings: 400 with a JSON error, and nothing changed`, T, async (t) => {
  const c = await loaded(kind, t);
  const drop = encodeURIComponent("x'; DROP TABLE accept; --");
  const cases: [string, number, string][] = [
    ['/v1/clients/top?limit=-1', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/clients/top?limit=99999999', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/clients/top?since=yesterday', 400, 'TCPLENS_ERR_BAD_QUERY'],
    [`/v1/clients/top?service=${'9'.repeat(300)}`, 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/clients/top?agent=a&agent=b', 400, 'TCPLENS_ERR_BAD_QUERY'],
    [`/v1/clients/top?${drop}=1`, 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/connections/series?step=0s', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/connections/series?step=1000000d', 400, 'TCPLENS_ERR_BAD_QUERY'],
    [`/v1/connections/series?step=${drop}`, 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/connections/series?step=1s&since=2020-01-01T00:00:00Z&service=10.0.0.2:80', 200, ''],
    ['/v1/balance?expect=lb=a,b', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/balance?expect=lb=0,0,0', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/balance?expect=lb=1,2', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/balance?expect=nobody=1,1', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/balance?gateway_port=99999', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/probes', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/probes?run=..%2F..%2Fetc', 400, 'TCPLENS_ERR_BAD_QUERY'],
    [`/v1/probes?run=r1&until=${drop}`, 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/hops/distribution?limit=5', 400, 'TCPLENS_ERR_BAD_QUERY'],
    ['/v1/agents?since=99999999999999999999', 400, 'TCPLENS_ERR_BAD_QUERY'],
    [`/v1/agents?agent=${drop}`, 200, ''],
    [`/v1/clients/top?service=${drop}`, 200, ''],
    ['POST /v1/agents', 404, 'TCPLENS_ERR_NOT_FOUND'],
  ];
  for (const [path, status, code] of cases) {
    await t.test(path, async () => {
      const post = path.startsWith('POST ');
      const r = await call(`${c.url}${post ? path.slice(5) : path}`, post ? 'POST' : 'GET', post ? '' : undefined);
      assert.equal(r.status, status, r.text);
      if (status === 200) return;
      assert.equal(r.json?.error?.code, code, r.text);
      assert.equal(typeof r.json.error.message, 'string');
      assert.equal(typeof r.json.error.hint, 'string');
      assert.doesNotMatch(r.text, /at .*\.js:\d+/, 'no stack trace');
    });
  }
  assert.equal((await get(c.url, `/v1/clients/top?service=${drop}`)).clients.length, 0);
  assert.equal((await get(c.url, '/v1/clients/top')).clients.length, 3, 'the accept table is still there, whole');
  assert.equal(await c.stop(), 0);
});
}

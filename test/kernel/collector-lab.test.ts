// The collector with real agents in the FULLNAT lab: a real collector process (DuckDB file in a
// temp dir, loopback), `tcplens accept` on the lab servers' cgroup and `tcplens http` inside the
// balancer's namespace (--netns, so it stays on this host's loopback to reach the collector), both
// with --collector. After real requests through the balancer, /v1/events holds exactly the records
// each agent printed with --json (same records, same order, nothing more), and the query routes
// count them: top clients = accepted connections, the balance's samples = the exchanges, the agents
// with their version and no drops. And `tcplens hops --collector` over loopback: stored as printed,
// and counted by /v1/hops/distribution.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { labDown, labUp, leftovers } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/state.js';
import { repoRoot } from '../../src/kernel/paths.js';
import { call, events, freePort, startCollector, tempDir, type Collector } from '../helpers/collector-process.js';
import { runTcplens, startTcplens } from './helpers/tcplens-cli.js';

const name = `c${process.pid % 100000}`;
const LOAD = join(repoRoot, 'dist', 'test', 'kernel', 'helpers', 'http-load.js');
const REQUESTS = 40;
let lab: LabState;

before(async () => {
  lab = await labUp({ name, clients: 1, servers: 2, hops: [0], ipv6: false, port: 80,
    toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 } });
});

after(async () => {
  await labDown(name);
  assert.deepEqual(leftovers(name), []);
});

const ns = (node: string) => lab.topology.nodes.find((n) => n.name === node)!.netns;

/** What the collector holds for one agent, without the two keys it adds. */
async function stored(c: Collector, agent: string, capability: string): Promise<Record<string, unknown>[]> {
  return (await events(c.url, { agent, capability })).map(({ agent: a, capability: cap, ...rec }) => {
    assert.equal(a, agent);
    assert.equal(cap, capability);
    return rec;
  });
}

test('accept and http agents in the lab: the collector stores exactly what they printed', { timeout: 240_000 }, async (t) => {
  const c = await startCollector(join(tempDir(t), 'lab.duckdb'), { track: t });
  const ship = (agent: string) => ['--collector', c.url, '--agent-name', agent];
  const lb = lab.topology.lbAddr4;
  const accept = await startTcplens(['accept', '--json', '--merge-window', '0', '--cgroup', lab.cgroup, '--trusted-lb', lb, ...ship('lab-accept')]);
  let http;
  try {
    http = await startTcplens(['http', '--netns', ns('lb'), '--iface', 's1', '--iface', 's2', '--port', '80', '--json', '--block-timeout', '5ms', ...ship('lab-http')]);
  } catch (e) {
    await accept.stop();
    throw e;
  }
  let sent: { path: string; status: number; server: string | null }[];
  let acceptEnd, httpEnd;
  try {
    const out = execFileSync('ip', ['netns', 'exec', ns('client1'), process.execPath, LOAD, lab.topology.vip4, '80', String(REQUESTS), 'fresh', '/col'],
      { encoding: 'utf8', timeout: 60_000 });
    sent = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(sent.length, REQUESTS);
    assert.ok(sent.every((s) => s.status === 200), 'every request answered');
    await http.stdout.wait(new RegExp(`"path":"/col-${REQUESTS - 1}"`), 15_000);
    for (let i = 0; accept.stdout.all.length < REQUESTS; i++) {
      assert.ok(i < 150, `accept printed ${accept.stdout.all.length} of ${REQUESTS} connections`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    // Stopping drains each agent's last batch to the collector before it exits.
    acceptEnd = await accept.stop();
    httpEnd = await http.stop();
  }
  assert.equal(acceptEnd.code, 0, acceptEnd.stderr.join('\n'));
  assert.equal(httpEnd.code, 0, httpEnd.stderr.join('\n'));
  const printedAccept = acceptEnd.stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
  const printedHttp = httpEnd.stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(printedAccept.length, REQUESTS, 'one accept record per connection (no merging)');
  assert.equal(printedHttp.length, REQUESTS, 'one exchange per request');
  for (const [end, n] of [[acceptEnd, REQUESTS], [httpEnd, REQUESTS]] as const) {
    assert.ok(end.stderr.some((l) => new RegExp(`collector: ${n} records acknowledged .* 0 dropped .* 0 refused, 0 unsent`).test(l)), end.stderr.join('\n'));
  }

  assert.deepStrictEqual(await stored(c, 'lab-accept', 'accept'), printedAccept);
  assert.deepStrictEqual(await stored(c, 'lab-http', 'http'), printedHttp);
  assert.equal((await events(c.url)).length, 2 * REQUESTS, 'nothing else was stored');

  // The routes over the same records: every connection once among the top clients (the real
  // client, from the balancer's TOA) per server it reached; every exchange one sample (requests to port 80: tier 1).
  const top = await call(`${c.url}/v1/clients/top`, 'GET');
  assert.equal(top.status, 200, top.text);
  const client1 = lab.topology.clients.find((x) => x.node === 'client1')!.ip4;
  const perServer = new Map<string, number>();
  for (const e of printedAccept) perServer.set(e.local as string, (perServer.get(e.local as string) ?? 0) + 1);
  const expected = [...perServer].sort(([a, n], [b, m]) => m - n || (a < b ? -1 : 1)).map(([local, n]) => [client1, local, n, 1]);
  assert.equal(expected.length, 2, 'the balancer used both servers');
  assert.deepEqual(top.json.clients.map((x: any) => [x.client, x.service, x.connections, x.agents]), expected);
  const bal = await call(`${c.url}/v1/balance?gateway_port=80`, 'GET');
  assert.equal(bal.status, 200, bal.text);
  assert.deepEqual(bal.json.tiers.map((x: any) => [x.tier, x.chooser, x.samples]), [[1, 'lb', REQUESTS]]);
  assert.equal(bal.json.verdict.samples, REQUESTS);
  const agents = await call(`${c.url}/v1/agents`, 'GET');
  assert.deepEqual(agents.json.agents.map((a: any) => [a.name, a.capabilities, a.events, a.drops]), [['lab-accept', ['accept'], REQUESTS, 0], ['lab-http', ['http'], REQUESTS, 0]]);
  assert.ok(agents.json.agents.every((a: any) => typeof a.version === 'string'), 'agents report their version');
  assert.equal(await c.stop(), 0);
});

test('hops agent over loopback: stored exactly as printed, counted by the hop distribution', { timeout: 120_000 }, async (t) => {
  const c = await startCollector(join(tempDir(t), 'hops.duckdb'), { track: t });
  const closed = await freePort();
  const r = await runTcplens(['hops', `127.0.0.1:${c.port}`, `127.0.0.1:${closed}`, '--json', '--collector', c.url, '--agent-name', 'lab-hops']);
  assert.equal(r.code, 0, r.stderr);
  const printed = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(printed.map((p) => [p.status, p.hops]).sort(), [['open', 0], ['refused', 0]]);
  assert.deepStrictEqual(await stored(c, 'lab-hops', 'hops'), printed);
  const d = await call(`${c.url}/v1/hops/distribution`, 'GET');
  assert.deepStrictEqual(d.json, { buckets: [{ hops: 0, count: 2 }], targets: 2 });
  assert.equal(await c.stop(), 0);
});

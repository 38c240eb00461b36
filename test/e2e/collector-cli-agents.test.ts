// --collector on the commands that need no root: `http --read` and `probe` ship exactly the
// records they print to a real collector process, and the probe run's path is then answered by
// /v1/probes. Bad agent flags on every agent command are usage errors before anything runs.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTcplens } from '../kernel/helpers/tcplens-cli.js';
import { call, events, startCollector, tempDir } from '../helpers/collector-process.js';
import { httpFixture } from '../helpers/http-fixture.js';
import { pcapOf } from '../helpers/tcp-conversation.js';

const T = { timeout: 60_000 };
const withoutKeys = (recs: Record<string, unknown>[]) => recs.map(({ agent: _a, capability: _c, ...r }) => r);

test('http --read --collector: the collector stores exactly the exchanges printed', T, async (t) => {
  const dir = tempDir(t);
  const c = await startCollector(join(dir, 'e.duckdb'), { track: t });
  const file = join(dir, 'f.pcap');
  writeFileSync(file, pcapOf(httpFixture().frames));
  const r = await runTcplens(['http', '--read', file, '--json', '--collector', c.url, '--agent-name', 'reader']);
  assert.equal(r.code, 0, r.stderr);
  const printed = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(printed.length >= 5, r.stdout);
  assert.match(r.stderr, new RegExp(`collector: ${printed.length} records acknowledged in 1 batches`));
  assert.deepStrictEqual(withoutKeys(await events(c.url, { agent: 'reader', capability: 'http' })), printed);
  assert.equal(await c.stop(), 0);
});

test('probe --collector: its results are stored as printed, and /v1/probes answers the run', T, async (t) => {
  const dir = tempDir(t);
  const c = await startCollector(join(dir, 'e.duckdb'), { track: t });
  const server = createServer((_req, res) => res.end(JSON.stringify({ server: 'pod-echo' })));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const r = await runTcplens(['probe', `http://127.0.0.1:${port}/`, '--count', '5', '--json', '--collector', c.url, '--agent-name', 'prober']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const { run } = lines.pop().summary;
  assert.deepStrictEqual(withoutKeys(await events(c.url, { agent: 'prober', capability: 'probe' })), lines, 'the summary line is not a record');
  const probes = await call(`${c.url}/v1/probes?run=${run}`, 'GET');
  assert.equal(probes.status, 200, probes.text);
  assert.deepStrictEqual(probes.json.probes.map((p: any) => [p.id, p.status, p.pod, p.gateway, p.hops]),
    [0, 1, 2, 3, 4].map((i) => [`${run}-${i}`, 200, 'pod-echo', null, []]));
  assert.deepStrictEqual(probes.json.distribution, { gateways: {}, pods: { 'pod-echo': 5 } });
  const agents = await call(`${c.url}/v1/agents`, 'GET');
  assert.deepEqual(agents.json.agents.map((a: any) => [a.name, a.capabilities, a.events, a.drops]), [['prober', ['probe'], 5, 0]]);
  assert.equal(await c.stop(), 0);
});

test('bad agent flags on http, hops and probe: usage errors with a code, before anything runs', T, async () => {
  const cases: [string[], string][] = [
    [['http', '--read', '/nonexistent', '--agent-name', 'x'], '--agent-name only means something with --collector or --bus'],
    [['hops', '127.0.0.1:1', '--collector', 'ftp://127.0.0.1:1'], '--collector ftp://127.0.0.1:1: expected http://HOST:PORT'],
    [['probe', 'http://127.0.0.1:1/', '--collector', 'http://127.0.0.1:1', '--agent-name', 'no spaces'], '--agent-name no spaces'],
    [['probe', 'http://127.0.0.1:1/', '--collector', 'http://127.0.0.1:1', '--token-file', '/nonexistent'], '--token-file /nonexistent'],
  ];
  for (const [args, message] of cases) {
    const r = await runTcplens(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes('TCPLENS_ERR_BAD_FLAG') && r.stderr.includes(message), r.stderr);
  }
});

// `tcplens http` live, in the FULLNAT lab: requests from a client through the balancer to two
// servers, captured on the balancer's two server-facing bridge ports (one ring each) by the real CLI (AF_PACKET ring + kernel
// filter). Exactly one exchange per request with the right method, path, status and backend;
// zero kernel drops; --write then --read gives the same exchanges.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { labDown, labUp, leftovers } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/state.js';
import { repoRoot } from '../../src/kernel/paths.js';
import { runTcplens, startTcplens } from './helpers/tcplens-cli.js';

const name = `h${process.pid % 100000}`;
let lab: LabState;
let dir: string;
const ns = (node: string) => lab.topology.nodes.find((n) => n.name === node)!.netns;
const LOAD = join(repoRoot, 'dist', 'test', 'kernel', 'helpers', 'http-load.js');

interface Sent { path: string; status: number; server: string | null }

function load(count: number, mode: 'keepalive' | 'fresh', prefix: string): Sent[] {
  const out = execFileSync('ip', ['netns', 'exec', ns('client1'), process.execPath, LOAD, lab.topology.vip4, '80', String(count), mode, prefix],
    { encoding: 'utf8', timeout: 60000 });
  return out.trim().split('\n').map((l) => JSON.parse(l) as Sent);
}

/** The CLI inside a namespace, as `ip netns exec NS tcplens http ...` (issue 11 brings --netns). */
const startIn = (netns: string, args: string[]) => startTcplens(['http', ...args], /tcplens: attached/, false, netns);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tcplens-http-lab-'));
  lab = await labUp({ name, clients: 1, servers: 2, hops: [0], ipv6: false, port: 80,
    toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 } });
});

after(async () => {
  await labDown(name);
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(leftovers(name), []);
});

test('N requests over keep-alive and fresh connections give exactly N exchanges; zero kernel drops; --write/--read agree', { timeout: 180000 }, async () => {
  const file = join(dir, 'lb.pcap');
  // Not on br0 itself: there the replies were seen already un-NATed (server -> real client, measured;
  // the bridge's netfilter runs before br0's tap), half of a connection no wire carries. The
  // bridge ports see the packets as sent.
  const cap = await startIn(ns('lb'), ['--iface', 's1', '--iface', 's2', '--port', '80', '--json', '--write', file, '--block-timeout', '5ms']);
  let code: number | null = null;
  let sent: Sent[] = [];
  try {
    sent = [...load(60, 'keepalive', '/ka'), ...load(40, 'fresh', '/fresh')];
    assert.equal(sent.length, 100);
    assert.ok(sent.every((s) => s.status === 200 && s.server), 'every request answered by a lab server');
    // The last blocks are handed over within the block timeout; wait for the last exchange.
    await cap.stdout.wait(/"path":"\/fresh-39"/, 10000);
  } finally {
    code = (await cap.stop()).code;
  }
  assert.equal(code, 0, cap.stderr.all.join('\n'));
  const got = cap.stdout.all.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(got.length, 100, 'one exchange per request, no more');
  const serverIp = (s: string) => lab.topology.servers.find((x) => x.node === s)!.ip4;
  const byPath = new Map(got.map((e) => [e.path as string, e]));
  for (const s of sent) {
    const e = byPath.get(s.path);
    assert.ok(e, `exchange for ${s.path}`);
    assert.equal(e.method, 'GET');
    assert.equal(e.status, 200);
    assert.equal(e.error, null);
    assert.equal(e.server, `${serverIp(s.server!)}:80`, `${s.path} went to ${s.server}`);
    assert.ok((e.client as string).startsWith(`${lab.topology.lbAddr4}:`), 'FULLNAT: the backend side sees the balancer as the client');
    assert.equal(typeof e.latency_ms, 'number');
  }
  // keep-alive: 60 exchanges over one client port per backend connection; fresh: 40 ports
  const kaPorts = new Set(got.filter((e) => (e.path as string).startsWith('/ka')).map((e) => e.client));
  const freshPorts = new Set(got.filter((e) => (e.path as string).startsWith('/fresh')).map((e) => e.client));
  assert.ok(kaPorts.size <= 2, `keep-alive used ${kaPorts.size} connections`);
  assert.equal(freshPorts.size, 40);
  const summary = cap.stderr.all.find((l) => l.startsWith('tcplens http: summary'))!;
  assert.ok(summary, cap.stderr.all.join('\n'));
  assert.match(summary, / kernel_drops=0 ring_freezes=0 vlan_in_metadata=0 /);
  assert.match(summary, / exchanges=100 incomplete=0 parse_errors=0 /);
  assert.ok(Number(/kernel_packets=(\d+)/.exec(summary)![1]) > 0);

  const again = await runTcplens(['http', '--read', file, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(again.stdout.trim().split('\n').map((l) => JSON.parse(l)), got);
});

test('a missing interface is TCPLENS_ERR_NO_INTERFACE, nothing left attached', { timeout: 30000 }, async () => {
  const r = await runTcplens(['http', '--iface', 'tcplens-nope0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /TCPLENS_ERR_NO_INTERFACE: no interface named 'tcplens-nope0'/);
  assert.match(r.stderr, /hint: /);
});

// `tcplens http --netns` three times in one process, in a gateway lab (balancer -> gw1, gw2 ->
// 4 pods on node1, node2 over IPIP): gw1 by its `ip netns` name, gw2 by the pid of its proxy,
// node1 by its path. Every exchange is tagged with the namespace it was seen in, and that is
// checked against where the request was really served (the pod's answer names the pod, and the
// peer it saw is the gateway's fabric address). The IPIP proof rides on the same capture: on a
// gateway the pod leg carries the tunnel (outer: gateway node -> pod node), and on the pod node
// the same requests appear twice: on its fabric device still tunnelled, and after
// decapsulation, on the pod's link, without a tunnel.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { POD_PORT } from '../../src/lab/gateway-tier.js';
import { netnsInodeAt } from '../../src/kernel/netns.js';
import { repoRoot } from '../../src/kernel/paths.js';
import { useGatewayLab } from './helpers/gateway-lab.js';
import { startTcplens } from './helpers/tcplens-cli.js';

const gl = useGatewayLab('hn');
const ns = gl.ns;
const LOAD = join(repoRoot, 'dist', 'test', 'kernel', 'helpers', 'http-load.js');

interface Sent { path: string; status: number; server: string | null; peer: string | null }
interface Tunnel { type: string; src: string; dst: string }
interface Seen { path: string; client: string; server: string; status: number | null; error: string | null; tunnel: Tunnel | null; netns?: { name: string; inode: number } }

test('three namespaces in one process (name, pid, path): every exchange attributed to where it was served; IPIP on the gateways, plain after decapsulation', { timeout: 180000 }, async () => {
  const tier = gl.state.topology.gatewayTier!;
  const gw2Pid = gl.state.servers.find((s) => s.node === 'gw2')!.pid;
  const specs = { gw1: ns('gw1'), gw2: String(gw2Pid), node1: `/run/netns/${ns('node1')}` };
  const inodes = { gw1: netnsInodeAt(`/run/netns/${ns('gw1')}`), gw2: netnsInodeAt(`/run/netns/${ns('gw2')}`), node1: netnsInodeAt(specs.node1) };
  const cap = await startTcplens(['http', '--netns', specs.gw1, '--netns', specs.gw2, '--netns', specs.node1,
    '--port', '80', '--port', String(POD_PORT), '--json', '--block-timeout', '5ms']);
  let code: number | null;
  let sent: Sent[] = [];
  try {
    const out = execFileSync('ip', ['netns', 'exec', ns('client1'), process.execPath, LOAD, gl.state.topology.vip4, '80', '40', 'fresh', '/n'],
      { encoding: 'utf8', timeout: 60000 });
    sent = out.trim().split('\n').map((l) => JSON.parse(l) as Sent);
    // Both legs on the gateways, and twice on node1 for its pods (pod1, pod3).
    const want = 2 * sent.length + 2 * sent.filter((s) => s.server === 'pod1' || s.server === 'pod3').length;
    for (let i = 0; i < 100 && cap.stdout.all.length < want; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    code = (await cap.stop()).code;
  }
  assert.equal(code, 0, cap.stderr.all.join('\n'));
  assert.equal(sent.length, 40);
  assert.ok(sent.every((s) => s.status === 200 && s.server && s.peer), 'every request answered by a pod');
  const summary = cap.stderr.all.find((l) => l.startsWith('tcplens http: summary'))!;
  assert.match(summary, / kernel_drops=0 /);

  // Where each request really went: the pod named itself; the peer it saw is a gateway's fabric address.
  const gwOf = (s: Sent) => tier.gateways.find((g) => s.peer!.startsWith(`${g.fabric}:`))!;
  const podOf = (s: Sent) => tier.pods.find((p) => p.node === s.server)!;
  const nodeOf = (s: Sent) => tier.podNodes.find((n) => n.node === podOf(s).host)!;
  assert.deepEqual(new Set(sent.map((s) => gwOf(s).node)), new Set(['gw1', 'gw2']), 'the balancer used both gateways');

  const seen = cap.stdout.all.map((l) => JSON.parse(l) as Seen);
  const byNs = (k: keyof typeof specs) => seen.filter((e) => e.netns?.name === specs[k]);
  assert.ok(seen.every((e) => Object.values(specs).includes(e.netns?.name ?? '')), 'every exchange carries the namespace it was seen in');
  for (const k of ['gw1', 'gw2', 'node1'] as const) {
    assert.ok(byNs(k).length > 0, `${k} saw exchanges`);
    assert.ok(byNs(k).every((e) => e.netns!.inode === inodes[k]), `${k}'s inode`);
  }
  const paths = (xs: { path: string }[]) => xs.map((x) => x.path).sort();
  for (const gw of ['gw1', 'gw2'] as const) {
    const served = sent.filter((s) => gwOf(s).node === gw);
    const mine = byNs(gw);
    const inbound = mine.filter((e) => e.server.endsWith(':80'));
    const outbound = mine.filter((e) => e.server.endsWith(`:${POD_PORT}`));
    assert.equal(inbound.length + outbound.length, mine.length);
    // Leg 1, from the balancer: exactly the requests this gateway served, plain, FULLNAT's client.
    assert.deepEqual(paths(inbound), paths(served), `${gw}: the balancer's leg has the requests ${gw} served, no others`);
    assert.ok(inbound.every((e) => e.tunnel === null && e.client.startsWith(`${gl.state.topology.lbAddr4}:`) && e.status === 200 && e.error === null));
    // Leg 2, to the pods: the same requests, each to the pod that answered it, inside IPIP from this gateway's node to the pod's node.
    assert.deepEqual(paths(outbound), paths(served), `${gw}: the pod leg has the same requests`);
    const fabric = tier.gateways.find((g) => g.node === gw)!.fabric;
    for (const e of outbound) {
      const s = served.find((x) => x.path === e.path)!;
      assert.equal(e.server, `${podOf(s).ip}:${POD_PORT}`, `${e.path} went to ${s.server}`);
      assert.equal(e.client.split(':')[0], fabric);
      assert.deepEqual(e.tunnel, { type: 'ipip', src: fabric, dst: nodeOf(s).fabric }, `${e.path}: outer addresses gateway node -> pod node`);
    }
  }
  // node1 holds pod1 and pod3: their requests, each twice: tunnelled on the fabric device, plain on the pod's link.
  const onNode1 = sent.filter((s) => nodeOf(s).node === 'node1');
  assert.ok(onNode1.length > 0 && onNode1.length < sent.length, 'node1 served some requests, node2 the others');
  const node1 = byNs('node1');
  const tunnelled = node1.filter((e) => e.tunnel !== null);
  const plain = node1.filter((e) => e.tunnel === null);
  assert.deepEqual(paths(tunnelled), paths(onNode1), 'node1\'s fabric device: exactly the requests for its pods, still in IPIP');
  assert.deepEqual(paths(plain), paths(onNode1), 'after decapsulation: the same requests without a tunnel');
  for (const e of node1) {
    const s = onNode1.find((x) => x.path === e.path)!;
    assert.equal(e.server, `${podOf(s).ip}:${POD_PORT}`);
    assert.equal(e.status, 200);
    assert.equal(e.client.split(':')[0], gwOf(s).fabric, 'the pod sees the gateway as its client');
    if (e.tunnel) assert.deepEqual(e.tunnel, { type: 'ipip', src: gwOf(s).fabric, dst: nodeOf(s).fabric });
  }
  // The gateway's pod leg and the node's view are the same exchange: same client endpoint.
  for (const e of plain) {
    const s = onNode1.find((x) => x.path === e.path)!;
    const atGw = byNs(gwOf(s).node === 'gw1' ? 'gw1' : 'gw2').find((x) => x.path === e.path && x.server.endsWith(`:${POD_PORT}`))!;
    assert.equal(atGw.client, e.client, `${e.path}: the same connection on both ends of the tunnel`);
  }
});

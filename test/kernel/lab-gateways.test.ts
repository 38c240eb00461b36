// The lab's gateway tier, real: clients -> FULLNAT balancer -> gateway proxies -> pods on other
// nodes over IPIP (TC encapsulation; this kernel has no ipip device). Even tiers spread exactly
// (round robin), --skew makes the chosen tier unfair with the configured weights, captures on a
// gateway's fabric device show real IPIP packets and a pod node's pod-facing device plain ones,
// and down removes it all.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, labUp, leftovers } from '../../src/lab/lab.js';
import { startCapture } from '../../src/lab/capture.js';
import { CLIENT_SCRIPT } from '../../src/lab/demo.js';
import { parseSkew } from '../../src/lab/gateway-tier.js';
import type { LabState } from '../../src/lab/state.js';
import { CaptureReader } from '../../src/net/capture-reader.js';
import { decodeFrame, newTcpSegment } from '../../src/net/packet.js';
import { formatAddr } from '../../src/net/addr.js';

const names: string[] = [];
after(async () => { for (const n of names) await labDown(n).catch(() => {}); });

async function up(tag: string, skew: string[] = []): Promise<LabState> {
  const name = `${tag}${process.pid}`;
  names.push(name);
  return labUp({ name, clients: 1, servers: 2, hops: [0], ipv6: false, port: 80, toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 },
    gateways: 2, pods: 3, skew: parseSkew(skew, 2, 3) });
}

interface Answer { client: string; server: string; peer: string }

function requests(lab: LabState, n: number): Answer[] {
  const ns = lab.topology.nodes.find((x) => x.name === 'client1')!.netns;
  const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, CLIENT_SCRIPT, lab.topology.vip4, '80', String(n)], { encoding: 'utf8', timeout: 60000 });
  return out.trim().split('\n').map((l) => JSON.parse(l) as Answer);
}

/** (gateway, pod) of each answer: the pod names itself, and its peer is the gateway's fabric address. */
function paths(lab: LabState, answers: Answer[]): { gw: string; pod: string }[] {
  const tier = lab.topology.gatewayTier!;
  return answers.map((a) => ({ gw: tier.gateways.find((g) => a.peer.startsWith(`${g.fabric}:`))!.node, pod: a.server }));
}

const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());

test('even tiers: 12 requests, 6 to each gateway, each gateway 2 to each pod', { timeout: 120000 }, async () => {
  const lab = await up('ge');
  const p = paths(lab, requests(lab, 12));
  assert.deepEqual([...count(p.map((x) => x.gw))].sort(), [['gw1', 6], ['gw2', 6]]);
  for (const gw of ['gw1', 'gw2']) {
    assert.deepEqual([...count(p.filter((x) => x.gw === gw).map((x) => x.pod))].sort(), [['pod1', 2], ['pod2', 2], ['pod3', 2]], gw);
  }
  const name = names.at(-1)!;
  assert.equal(await labDown(name), true);
  assert.deepEqual(leftovers(name), []);
});

test('--skew lb=70,30 and gw1=80,10,10: each tier spreads by its weights', { timeout: 120000 }, async () => {
  const lab = await up('gs', ['lb=70,30', 'gw1=80,10,10']);
  const p = paths(lab, requests(lab, 300));
  const share = (xs: { gw: string }[], gw: string) => xs.filter((x) => x.gw === gw).length / xs.length;
  assert.ok(Math.abs(share(p, 'gw1') - 0.7) < 0.1, `gw1 got ${share(p, 'gw1')} of the balancer's connections`);
  const viaGw1 = p.filter((x) => x.gw === 'gw1');
  const pod1 = viaGw1.filter((x) => x.pod === 'pod1').length / viaGw1.length;
  assert.ok(Math.abs(pod1 - 0.8) < 0.05, `gw1 sent ${pod1} of its requests to pod1`);
  const viaGw2 = count(p.filter((x) => x.gw === 'gw2').map((x) => x.pod));
  assert.ok(Math.max(...viaGw2.values()) - Math.min(...viaGw2.values()) <= 1, `gw2 stays even: ${[...viaGw2]}`);
});

test('IPIP on the wire: a gateway\'s fabric device carries tunnelled packets both ways; the pod\'s link plain ones', { timeout: 120000 }, async () => {
  const lab = names.length ? (await import('../../src/lab/state.js')).readState(names.at(-1)!)! : await up('gi');
  const tier = lab.topology.gatewayTier!;
  const ns = (node: string) => lab.topology.nodes.find((x) => x.name === node)!.netns;
  const fabricFile = join(tmpdir(), `tcplens-${process.pid}-fabric.pcap`);
  const podFile = join(tmpdir(), `tcplens-${process.pid}-pod.pcap`);
  const fabric = await startCapture(ns('gw1'), 'eth1', fabricFile, 'ip proto 4');
  const pod = await startCapture(ns('node1'), 'p1', podFile, 'tcp port 29090');
  try {
    requests(lab, 12);
  } finally {
    await fabric.stop();
    await pod.stop();
  }
  const decode = (file: string) => {
    const segs: { tunnel: string | null; outer: string | null; src: string; dst: string; dport: number; sport: number }[] = [];
    const seg = newTcpSegment();
    const r = new CaptureReader((rec) => {
      if (decodeFrame(rec.linkType, rec.data, seg, rec.origLen) !== 'tcp') return;
      const f = seg.frame;
      segs.push({
        tunnel: seg.tunnel,
        outer: seg.tunnel ? `${formatAddr(f.subarray(seg.outerSrcOff, seg.outerSrcOff + 4), 4)}>${formatAddr(f.subarray(seg.outerDstOff, seg.outerDstOff + 4), 4)}` : null,
        src: formatAddr(f.subarray(seg.srcOff, seg.srcOff + 4), 4), dst: formatAddr(f.subarray(seg.dstOff, seg.dstOff + 4), 4), sport: seg.srcPort, dport: seg.dstPort,
      });
    });
    r.push(readFileSync(file));
    r.end();
    rmSync(file, { force: true });
    return segs;
  };
  const gw1 = tier.gateways.find((g) => g.node === 'gw1')!.fabric;
  const tunnelled = decode(fabricFile);
  assert.ok(tunnelled.length > 0, 'IPIP packets on gw1\'s fabric device');
  const nodeOf = (podIp: string) => tier.podNodes.find((n) => n.node === tier.pods.find((p) => p.ip === podIp)!.host)!.fabric;
  for (const s of tunnelled) {
    assert.equal(s.tunnel, 'ipip');
    const toPod = s.dport === 29090;
    const podIp = toPod ? s.dst : s.src;
    assert.equal(s.outer, toPod ? `${gw1}>${nodeOf(podIp)}` : `${nodeOf(podIp)}>${gw1}`, JSON.stringify(s));
  }
  assert.ok(tunnelled.some((s) => s.dport === 29090) && tunnelled.some((s) => s.sport === 29090), 'both directions are tunnelled');
  const plain = decode(podFile);
  assert.ok(plain.length > 0 && plain.every((s) => s.tunnel === null), 'behind the node, the pod sees plain TCP');
  assert.ok(plain.every((s) => s.dport === 29090 ? s.dst === tier.pods[0].ip : s.src === tier.pods[0].ip));
});

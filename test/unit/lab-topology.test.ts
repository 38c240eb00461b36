// The lab's plan, ruleset and flag parsing: pure functions, no root.
import test from 'node:test';
import assert from 'node:assert/strict';
import { planLab, ipBatch, labNetnsPattern, validateName, type LabOptions } from '../../src/lab/topology.js';
import { nftRuleset, dnatCounts } from '../../src/lab/nft.js';
import { FABRIC_MTU, parseSkew, WeightedRoundRobin } from '../../src/lab/gateway-tier.js';
import { labRequest, parseHops, parseToa } from '../../src/cli/lab-options.js';
import { TcplensError } from '../../src/errors.js';

const base: LabOptions = { name: 'x', index: 7, clients: 3, servers: 2, hops: [0, 1, 2], ipv6: true,
  toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 }, port: 80 };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TcplensError, `not a TcplensError: ${e}`);
    assert.ok(e.hint.length > 0);
    return e.code;
  }
  return 'no error';
}

test('every client gets its own address, and client i sits behind hops[i] routers', () => {
  const t = planLab(base);
  assert.deepEqual(t.clients.map((c) => c.ip4), ['10.7.1.2', '10.7.2.6', '10.7.3.10']);
  assert.deepEqual(t.clients.map((c) => c.ip6), ['fd00:7:1::2', 'fd00:7:2:1::2', 'fd00:7:3:2::2']);
  assert.deepEqual(t.clients.map((c) => c.hops), [0, 1, 2]);
  assert.deepEqual(t.nodes.filter((n) => n.role === 'router').map((n) => n.name), ['router2-1', 'router3-1', 'router3-2']);
  assert.equal(t.vip4, '10.7.255.1');
  assert.equal(t.lbAddr4, '10.7.0.1');
  assert.deepEqual(t.servers.map((s) => s.ip4), ['10.7.0.11', '10.7.0.12']);
  const all = t.nodes.flatMap((n) => n.ifaces.flatMap((f) => [f.ip4, f.ip6])).filter(Boolean);
  assert.equal(new Set(all).size, all.length, 'no address is used twice');
  // Every link joins two existing nodes, and every node but the balancer has one link towards it.
  const names = new Set(t.nodes.map((n) => n.name));
  for (const l of t.links) assert.ok(names.has(l.a) && names.has(l.b));
  assert.equal(t.links.length, t.nodes.length - 1);
});

test('routes lead from each client to the balancer and back', () => {
  const t = planLab(base);
  const node = (n: string) => t.nodes.find((x) => x.name === n)!;
  assert.deepEqual(node('client3').routes.map((r) => `${r.to} via ${r.via}`), ['default via 10.7.3.9', 'default via fd00:7:3:2::1']);
  assert.deepEqual(node('router3-2').routes.map((r) => `${r.to} via ${r.via}`),
    ['default via 10.7.3.5', 'default via fd00:7:3:1::1', '10.7.3.0/24 via 10.7.3.10', 'fd00:7:3::/48 via fd00:7:3:2::2']);
  assert.ok(node('lb').routes.some((r) => r.to === '10.7.3.0/24' && r.via === '10.7.3.2'));
  assert.ok(node('router3-1').forwarding && node('lb').forwarding && !node('client1').forwarding);
  const lines = ipBatch(node('server1'));
  assert.ok(lines.includes('route add ::/0 via fd00:7::1'));
  assert.ok(lines.includes('addr add fd00:7::11/64 dev eth0 nodad'));
  assert.ok(ipBatch(node('lb')).includes('link set s2 master br0'));
});

test('IPv4-only labs have no IPv6 anywhere', () => {
  const t = planLab({ ...base, ipv6: false });
  assert.equal(t.vip6, undefined);
  assert.ok(t.nodes.every((n) => n.ifaces.every((f) => !f.ip6) && n.routes.every((r) => r.family === 4)));
  assert.ok(!nftRuleset(t).includes('ip6'));
});

test('the namespace pattern matches this lab only, not a lab whose name starts alike', () => {
  const p = labNetnsPattern('a');
  assert.ok(p.test('tl-a-lb') && p.test('tl-a-client12') && p.test('tl-a-router3-2') && p.test('tl-a-server1'));
  assert.ok(!p.test('tl-a-b-lb') && !p.test('tl-ab-lb') && !p.test('tl-a-client1x'));
  assert.equal(code(() => validateName('Bad Name')), 'TCPLENS_ERR_BAD_FLAG');
  assert.equal(code(() => validateName('a'.repeat(17))), 'TCPLENS_ERR_BAD_FLAG');
  assert.equal(validateName('lab-2'), 'lab-2');
});

test('nftables: DNAT round robin over the servers, SNAT to the balancer', () => {
  const r = nftRuleset(planLab(base));
  assert.match(r, /ip daddr 10\.7\.255\.1 tcp dport 80 counter dnat ip to numgen inc mod 2 map \{ 0 : 10\.7\.0\.11, 1 : 10\.7\.0\.12 \}/);
  assert.match(r, /ip6 daddr fd00:7:ff::1 tcp dport 80 counter dnat ip6 to numgen inc mod 2 map \{ 0 : fd00:7::11, 1 : fd00:7::12 \}/);
  assert.match(r, /oifname "br0" ct status dnat meta nfproto ipv4 counter snat ip to 10\.7\.0\.1/);
  assert.match(r, /type nat hook prerouting priority dstnat/);
  const json = JSON.stringify({ nftables: [
    { rule: { chain: 'prerouting', expr: [{ match: { left: { payload: { protocol: 'ip' } } } }, { counter: { packets: 5, bytes: 300 } }] } },
    { rule: { chain: 'prerouting', expr: [{ match: { left: { payload: { protocol: 'ip6' } } } }, { counter: { packets: 2, bytes: 160 } }] } },
    { rule: { chain: 'postrouting', expr: [{ counter: { packets: 7, bytes: 1 } }] } },
  ] });
  assert.deepEqual(dnatCounts(json), { ipv4: 5, ipv6: 2 });
});

test('flags: TOA dialects, hop lists and counts', () => {
  assert.deepEqual(parseToa([]), { toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 } });
  assert.deepEqual(parseToa(['200/8,254/20']), { toa4: { kind: 200, len: 8, family: 4 }, toa6: { kind: 254, len: 20, family: 6 } });
  // The one dialect parser (net/toa), so the same rules and code as accept's and toa's --toa.
  for (const bad of ['254', '254/10', '2/8', '256/8', 'x/8', '8/8']) assert.equal(code(() => parseToa([bad])), 'TCPLENS_ERR_BAD_TOA', bad);
  assert.throws(() => parseToa(['254/12']), /--toa 254\/12: /);
  assert.deepEqual(parseHops('0,1,2', undefined), { hops: [0, 1, 2], clients: 3 });
  assert.deepEqual(parseHops('2', 4), { hops: [2, 2, 2, 2], clients: 4 });
  assert.deepEqual(parseHops(undefined, 2), { hops: [0, 0], clients: 2 });
  assert.equal(code(() => parseHops('1,2', 3)), 'TCPLENS_ERR_BAD_FLAG');
  assert.equal(code(() => parseHops('1,-1', undefined)), 'TCPLENS_ERR_BAD_FLAG');
  assert.equal(code(() => parseHops('99', undefined)), 'TCPLENS_ERR_BAD_FLAG');
  const ok = labRequest({ toa: [], ipv6: false }, { name: 'demo', clients: 3, hops: '0,1,2' });
  assert.deepEqual([ok.name, ok.clients, ok.servers, ok.hops], ['demo', 3, 2, [0, 1, 2]]);
  assert.equal(labRequest({ toa: [], ipv6: false, clients: '5' }, { name: 'demo', clients: 3, hops: '0,1,2' }).hops.length, 5);
  for (const f of [{ clients: '0' }, { clients: '33' }, { servers: '0' }, { servers: 'two' }, { servers: '17' }, { name: '../x' }]) {
    assert.equal(code(() => labRequest({ toa: [], ipv6: false, ...f }, { name: 'lab', clients: 3 })), 'TCPLENS_ERR_BAD_FLAG', JSON.stringify(f));
  }
});

test('a gateway tier: gateways take the servers\' places, pods sit two a node behind IPIP', () => {
  const t = planLab({ name: 'g', index: 7, clients: 1, servers: 2, hops: [0], ipv6: false, port: 80,
    toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 }, gateways: 2, pods: 3, skew: parseSkew(['gw2=1,2,3'], 2, 3) });
  assert.deepEqual(t.servers.map((s) => [s.node, s.ip4]), [['gw1', '10.7.0.11'], ['gw2', '10.7.0.12']]);
  const tier = t.gatewayTier!;
  assert.deepEqual(tier.podNodes.map((n) => [n.node, n.fabric, n.pods]), [['node1', '10.7.254.101', ['pod1', 'pod3']], ['node2', '10.7.254.102', ['pod2']]]);
  assert.deepEqual(tier.pods.map((p) => p.ip), ['10.7.200.6', '10.7.200.10', '10.7.200.14']);
  assert.deepEqual(tier.gateways.map((g) => g.weights), [[1, 1, 1], [1, 2, 3]]);
  const gw1 = t.nodes.find((n) => n.name === 'gw1')!;
  assert.deepEqual(gw1.routes.filter((r) => r.to.startsWith('10.7.200.')).map((r) => `${r.to} via ${r.via}`),
    ['10.7.200.6/32 via 10.7.254.101', '10.7.200.10/32 via 10.7.254.102', '10.7.200.14/32 via 10.7.254.101']);
  assert.ok(ipBatch(gw1).includes(`link set eth1 mtu ${FABRIC_MTU}`), 'room for the outer header');
  assert.ok(labNetnsPattern('g').test('tl-g-pod3') && labNetnsPattern('g').test('tl-g-node2') && labNetnsPattern('g').test('tl-g-gw1'));
});

test('--skew specs are checked against the tier\'s shape', () => {
  assert.deepEqual(parseSkew(['lb=70,30', 'gw1=80,10,10'], 2, 3), { lb: [70, 30], gw: { gw1: [80, 10, 10] } });
  for (const bad of ['lb=70', 'gw1=1,2', 'gw3=1,1,1', 'lb=0,0', 'pod1=1,1', 'lb=a,b']) {
    assert.throws(() => parseSkew([bad], 2, 3), { code: 'TCPLENS_ERR_BAD_FLAG' }, bad);
  }
});

test('weighted round robin gives exact shares, spread out', () => {
  const w = new WeightedRoundRobin(['a', 'b', 'c'], [5, 1, 1]);
  const seq = Array.from({ length: 7 }, () => w.next());
  assert.deepEqual([...seq].sort(), ['a', 'a', 'a', 'a', 'a', 'b', 'c']);
  assert.notDeepEqual(seq.slice(0, 5), ['a', 'a', 'a', 'a', 'a'], 'not in one run');
});

test('--gateways flags: a tier, its pods and skew; misuse is refused', () => {
  const r = labRequest({ toa: [], ipv6: false, gateways: '2', pods: '4', skew: ['lb=3,1'] }, { name: 'lab', clients: 3 });
  assert.deepEqual([r.gateways, r.pods, r.servers, r.skew], [2, 4, 2, { lb: [3, 1], gw: {} }]);
  for (const bad of [{ pods: '3' }, { skew: ['lb=1,1'] }, { gateways: '2', servers: '2' }, { gateways: '9' }, { gateways: '2', skew: ['lb=1'] }]) {
    assert.throws(() => labRequest({ toa: [], ipv6: false, ...bad }, { name: 'lab', clients: 3 }), { code: 'TCPLENS_ERR_BAD_FLAG' }, JSON.stringify(bad));
  }
});

test('a skewed balancer draws backends by weight', () => {
  const t = planLab({ name: 'w', index: 3, clients: 1, servers: 2, hops: [0], ipv6: false, port: 80,
    toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 }, gateways: 2, pods: 1, skew: parseSkew(['lb=70,30'], 2, 1) });
  assert.match(nftRuleset(t), /numgen random mod 100 map \{ 0-69 : 10\.3\.0\.11, 70-99 : 10\.3\.0\.12 \}/);
});

// `tcplens lab status`: what a lab is made of and what is running in it, checked live (namespaces
// present, server processes alive, TC filters' counters, nftables counters), not just recalled.
import { TcplensError } from '../errors.js';
import { listNetns, runIn } from './netns.js';
import { dnatCounts, NFT_TABLE } from './nft.js';
import { alive, pidsIn } from './servers.js';
import { listLabs, readState, type LabState } from './state.js';
import { readToaCounters, type ToaInserterCounters } from './toa-inserter.js';
import type { LabNode } from './topology.js';
import type { GatewayTier } from './gateway-tier.js';

export interface NodeStatus {
  node: string;
  role: LabNode['role'];
  netns: string;
  present: boolean;
  addresses: string[];
  hops?: number;
  server?: { pid: number; running: boolean; cgroup: string; log: string };
}

export interface LabStatus {
  name: string;
  phase: LabState['phase'];
  createdAt: string;
  vip: string[];
  balancer: string[];
  toa: { ipv4: string; ipv6: string; devices: string[]; counters: ToaInserterCounters | null };
  dnat: { ipv4: number; ipv6: number } | null;
  cgroup: string;
  tier: GatewayTier | null;
  nodes: NodeStatus[];
}

export function labStatus(name: string): LabStatus {
  const s = readState(name);
  if (!s) {
    const labs = listLabs();
    throw new TcplensError('TCPLENS_ERR_LAB', `no lab named '${name}' is up`,
      labs.length ? `labs that are up: ${labs.join(', ')}` : 'bring one up: tcplens lab up (or tcplens lab demo)');
  }
  const t = s.topology;
  const o = t.options;
  const present = new Set(listNetns());
  const nodes: NodeStatus[] = t.nodes.map((n) => {
    const st: NodeStatus = {
      node: n.name, role: n.role, netns: n.netns, present: present.has(n.netns), hops: n.hops,
      // The balancer's client-facing ends are the clients' gateways: named by device only, to keep the row short.
      addresses: n.ifaces.filter((f) => n.role !== 'lb' || f.dev === 'lo' || f.dev === 'br0')
        .flatMap((f) => [f.ip4, f.ip6].filter((a): a is string => !!a).map((a) => `${a} (${f.dev === 'lo' ? 'VIP' : f.dev})`)),
    };
    const p = s.servers.find((x) => x.node === n.name);
    if (p) st.server = { pid: p.pid, running: alive(p.pid) && pidsIn(p.cgroup).includes(p.pid), cgroup: p.cgroup, log: p.log };
    return st;
  });
  let dnat: LabStatus['dnat'] = null;
  const lb = t.nodes.find((n) => n.role === 'lb')!;
  if (present.has(lb.netns)) {
    try { dnat = dnatCounts(runIn(lb.netns, ['nft', '-j', 'list', 'table', 'inet', NFT_TABLE])); } catch { dnat = null; }
  }
  const port = o.port;
  return {
    name: s.name, phase: s.phase, createdAt: s.createdAt,
    vip: [`${t.vip4}:${port}`, ...(t.vip6 ? [`[${t.vip6}]:${port}`] : [])],
    balancer: [t.lbAddr4, ...(t.lbAddr6 ? [t.lbAddr6] : [])],
    toa: { ipv4: `${o.toa4.kind}/${o.toa4.len}`, ipv6: `${o.toa6.kind}/${o.toa6.len}`, devices: s.tc.filter((x) => x.node === 'lb').map((x) => `${x.node}:${x.dev}`),
      counters: readToaCounters(s.pinDir) },
    dnat, cgroup: s.cgroup, nodes, tier: t.gatewayTier ?? null,
  };
}

export function formatStatus(st: LabStatus): string {
  const lines = [
    `lab '${st.name}': ${st.phase}${st.phase === 'up' ? '' : ' (incomplete: tcplens lab down --name ' + st.name + ')'}, since ${st.createdAt}`,
    `  VIP ${st.vip.join('  ')} -> balancer (FULLNAT, SNAT to ${st.balancer.join(' / ')}) -> ${st.tier ? `${st.tier.gateways.length} gateways -> ${st.tier.pods.length} pods over IPIP` : `${st.nodes.filter((n) => n.role === 'server').length} servers, round robin`}`,
    '',
  ];
  const rows = st.nodes.map((n) => {
    let what = n.role === 'client' ? `client, ${n.hops} hop${n.hops === 1 ? '' : 's'} from the balancer` : n.role;
    if (n.role === 'lb') what = 'balancer: nftables DNAT+SNAT, TOA inserter at TC ingress';
    if (n.role === 'pod-node') what = 'pod node: IPIP at TC on eth0';
    if (n.server) what = `http pid ${n.server.pid} ${n.server.running ? 'running' : 'NOT RUNNING'}, cgroup ${n.server.cgroup}`;
    if (!n.present) what = `MISSING namespace; ${what}`;
    return [n.node, n.netns, n.addresses.join(', '), what];
  });
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), ['node', 'netns', 'addresses'][i].length));
  lines.push(`  ${'node'.padEnd(w[0])}  ${'netns'.padEnd(w[1])}  ${'addresses'.padEnd(w[2])}  running`);
  for (const r of rows) lines.push(`  ${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`);
  const tier = st.tier;
  if (tier) {
    lines.push('', `  tier 1: the balancer spreads over ${tier.gateways.map((g) => g.node).join(', ')} with weights ${tier.lbWeights.join(':')}`);
    for (const g of tier.gateways) lines.push(`  tier 2: ${g.node} (fabric ${g.fabric}) spreads over ${tier.pods.map((p) => p.node).join(', ')} with weights ${g.weights.join(':')}, over IPIP`);
    lines.push(`  pods: ${tier.pods.map((p) => `${p.node} ${p.ip}:29090 on ${p.host}`).join(', ')}`);
  }
  const c = st.toa.counters;
  lines.push('',
    `  TOA inserter (${st.toa.ipv4} for IPv4, ${st.toa.ipv6} for IPv6) on ${st.toa.devices.join(', ') || 'nothing'}: ` +
    (c ? `inserted ${c.inserted_syn + c.inserted_ack} (SYN ${c.inserted_syn}, ACK ${c.inserted_ack}), skipped-no-room ${c.skipped_no_room}, ` +
      `skipped-payload ${c.skipped_payload}, failed ${c.failed}` : 'counters not found'));
  if (st.dnat) lines.push(`  connections balanced: IPv4 ${st.dnat.ipv4}, IPv6 ${st.dnat.ipv6}`);
  lines.push(`  watch the servers: tcplens accept --cgroup ${st.cgroup}   (one server: --cgroup ${st.cgroup}/server-1)`, '');
  return lines.join('\n');
}

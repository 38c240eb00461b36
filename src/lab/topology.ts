// The lab's shape as data: which namespaces, which links, which addresses and routes. Pure, so
// the plan can be tested without root and `status` can print it from the state file.
//
//   client<i> --(router<i>-<h> ... router<i>-1)-- lb --br0-- server<k>
//
// Addresses (I = the lab's index, unique among labs):
//   client i's path, segment j (j = 0 at the balancer): 10.I.i.4j+1 (balancer side) / 4j+2, /30
//                                                       fd00:I:i:j::1 / ::2, /64
//   servers' LAN on the balancer's bridge: 10.I.0.1 (balancer) and 10.I.0.10+k, fd00:I::1 / ::10+k
//   virtual IP: 10.I.255.1 and fd00:I:ff::1 (on the balancer's lo)
import { TcplensError } from '../errors.js';
import { formatAddr, parseAddr } from '../net/addr.js';
import type { ToaDialect } from '../net/toa.js';
import { planGatewayTier, type GatewayTier, type Skew } from './gateway-tier.js';

export const LIMITS = { clients: 32, servers: 16, hops: 16, index: 250 } as const;
export const NAME_RE = /^[a-z0-9][a-z0-9-]{0,15}$/;

export interface LabOptions {
  name: string;
  index: number;
  clients: number;
  servers: number;
  hops: number[]; // per client, 0 = wired straight to the balancer
  ipv6: boolean;
  toa4: ToaDialect;
  toa6: ToaDialect;
  port: number;
  /** a gateway tier: the balancer's backends are this many HTTP proxies to `pods` pods over IPIP */
  gateways?: number;
  pods?: number;
  skew?: Skew;
}

export interface Iface {
  dev: string;
  ip4: string;
  ip6?: string;
  prefix4: number;
  prefix6: number;
  /** enslave to this bridge instead of addressing it */
  master?: string;
  mtu?: number;
}

export interface Route { to: string; via: string; family: 4 | 6 }

export type Role = 'client' | 'router' | 'lb' | 'server' | 'gateway' | 'pod-node' | 'pod';

export interface LabNode {
  name: string;
  role: Role;
  netns: string;
  ifaces: Iface[];
  routes: Route[];
  forwarding: boolean;
  /** clients: routers between it and the balancer */
  hops?: number;
}

/** A veth pair: end a in node a, end b in node b. */
export interface VethLink { a: string; aDev: string; b: string; bDev: string }

export interface Topology {
  options: LabOptions;
  vip4: string;
  vip6?: string;
  lbAddr4: string;
  lbAddr6?: string;
  nodes: LabNode[];
  links: VethLink[];
  /** the balancer's client-facing devices, where the TOA inserter sits */
  clientFacing: string[];
  /** the balancer's backends: real servers, or the gateways of a gateway tier */
  servers: { node: string; ip4: string; ip6?: string }[];
  clients: { node: string; ip4: string; ip6?: string; hops: number }[];
  gatewayTier?: GatewayTier;
}

export function netnsName(lab: string, node: string): string {
  return `tl-${lab}-${node}`;
}

/** Matches exactly the namespaces of lab `lab` (not those of a lab whose name merely starts alike). */
export function labNetnsPattern(lab: string): RegExp {
  return new RegExp(`^tl-${lab.replace(/[^a-z0-9-]/g, '')}-(lb|client\\d+|server\\d+|router\\d+-\\d+|gw\\d+|node\\d+|pod\\d+)$`);
}

export function validateName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--name ${JSON.stringify(name)}: not a lab name`,
      'use 1-16 characters: lower-case letters, digits and -, starting with a letter or digit');
  }
  return name;
}

export function planLab(o: LabOptions): Topology {
  const I = o.index;
  const ns = (n: string) => netnsName(o.name, n);
  // Written the way tcplens prints addresses (RFC 5952), so outputs compare as strings.
  const v6 = (s: string) => (o.ipv6 ? formatAddr(parseAddr(s)!.bytes, 6) : undefined);
  const nodes: LabNode[] = [];
  const links: VethLink[] = [];
  const lb: LabNode = {
    name: 'lb', role: 'lb', netns: ns('lb'), forwarding: true, routes: [],
    ifaces: [
      { dev: 'lo', ip4: `10.${I}.255.1`, ip6: v6(`fd00:${I}:ff::1`), prefix4: 32, prefix6: 128 },
      { dev: 'br0', ip4: `10.${I}.0.1`, ip6: v6(`fd00:${I}::1`), prefix4: 24, prefix6: 64 },
    ],
  };
  nodes.push(lb);
  const clients: Topology['clients'] = [];
  const clientFacing: string[] = [];

  for (let i = 1; i <= o.clients; i++) {
    const h = o.hops[i - 1] ?? 0;
    const seg = (j: number, side: 1 | 2) => ({ ip4: `10.${I}.${i}.${4 * j + side}`, ip6: v6(`fd00:${I}:${i}:${j}::${side}`) });
    // The chain from the balancer outwards: lb, router i-1, ..., router i-h, client i.
    const chain: string[] = ['lb'];
    for (let j = 1; j <= h; j++) chain.push(`router${i}-${j}`);
    chain.push(`client${i}`);
    const lbDev = `c${i}`;
    clientFacing.push(lbDev);
    lb.ifaces.push({ dev: lbDev, ...seg(0, 1), prefix4: 30, prefix6: 64 });
    lb.routes.push({ to: `10.${I}.${i}.0/24`, via: seg(0, 2).ip4, family: 4 });
    if (o.ipv6) lb.routes.push({ to: `fd00:${I}:${i}::/48`, via: seg(0, 2).ip6!, family: 6 });
    for (let j = 1; j < chain.length; j++) {
      const name = chain[j];
      const isClient = j === chain.length - 1;
      const up = { dev: 'eth0', ...seg(j - 1, 2), prefix4: 30, prefix6: 64 };
      const node: LabNode = {
        name, role: isClient ? 'client' : 'router', netns: ns(name), forwarding: !isClient,
        ifaces: [up], routes: [{ to: 'default', via: seg(j - 1, 1).ip4, family: 4 }],
      };
      if (o.ipv6) node.routes.push({ to: 'default', via: seg(j - 1, 1).ip6!, family: 6 });
      if (!isClient) {
        node.ifaces.push({ dev: 'eth1', ...seg(j, 1), prefix4: 30, prefix6: 64 });
        node.routes.push({ to: `10.${I}.${i}.0/24`, via: seg(j, 2).ip4, family: 4 });
        if (o.ipv6) node.routes.push({ to: `fd00:${I}:${i}::/48`, via: seg(j, 2).ip6!, family: 6 });
      } else {
        node.hops = h;
        clients.push({ node: name, ip4: up.ip4, ip6: up.ip6, hops: h });
      }
      nodes.push(node);
      const prev = chain[j - 1];
      links.push({ a: prev, aDev: j === 1 ? lbDev : 'eth1', b: name, bDev: up.dev });
    }
  }

  const servers: Topology['servers'] = [];
  const gw = o.gateways ? planGatewayTier(I, o.gateways, o.pods ?? 1, o.skew ?? { lb: null, gw: {} }, ns, lb) : null;
  for (let k = 1; k <= (o.gateways || o.servers); k++) {
    const name = gw ? `gw${k}` : `server${k}`;
    const eth0 = { dev: 'eth0', ip4: `10.${I}.0.${10 + k}`, ip6: v6(`fd00:${I}::${10 + k}`), prefix4: 24, prefix6: 64 };
    const node: LabNode = {
      name, role: gw ? 'gateway' : 'server', netns: ns(name), forwarding: false, ifaces: [eth0],
      routes: [{ to: 'default', via: `10.${I}.0.1`, family: 4 }],
    };
    gw?.gatewayExtras(k, node);
    if (o.ipv6) node.routes.push({ to: 'default', via: v6(`fd00:${I}::1`)!, family: 6 });
    nodes.push(node);
    lb.ifaces.push({ dev: `s${k}`, ip4: '', prefix4: 0, prefix6: 0, master: 'br0' });
    links.push({ a: 'lb', aDev: `s${k}`, b: name, bDev: 'eth0' });
    servers.push({ node: name, ip4: eth0.ip4, ip6: eth0.ip6 });
  }

  if (gw) {
    nodes.push(...gw.nodes);
    links.push(...gw.links);
  }
  return {
    options: o, vip4: `10.${I}.255.1`, vip6: v6(`fd00:${I}:ff::1`), lbAddr4: `10.${I}.0.1`, lbAddr6: v6(`fd00:${I}::1`),
    nodes, links, clientFacing, servers, clients, ...(gw && { gatewayTier: gw.tier }),
  };
}

/** `ip -batch` lines that address a node, bring its devices up and route it. */
export function ipBatch(node: LabNode): string[] {
  const out = ['link set lo up'];
  if (node.role === 'lb') out.push('link add br0 type bridge', 'link set br0 up');
  if (node.ifaces.some((f) => f.master === 'br1')) out.push('link add br1 type bridge', 'link set br1 up');
  for (const f of node.ifaces) {
    if (f.master) out.push(`link set ${f.dev} master ${f.master}`);
    if (f.mtu) out.push(`link set ${f.dev} mtu ${f.mtu}`);
    if (f.ip4) out.push(`addr add ${f.ip4}/${f.prefix4} dev ${f.dev}`);
    if (f.ip6) out.push(`addr add ${f.ip6}/${f.prefix6} dev ${f.dev} nodad`);
    if (f.dev !== 'lo' && f.dev !== 'br0') out.push(`link set ${f.dev} up`);
  }
  // Batch lines take no -6: an explicit ::/0 says the family.
  for (const r of node.routes) out.push(`route add ${r.family === 6 && r.to === 'default' ? '::/0' : r.to} via ${r.via}`);
  return out;
}

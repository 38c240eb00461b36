// The lab's second tier, as a plan: with --gateways N the balancer's backends are gateway nodes
// gw1..gwN running an HTTP reverse proxy, and behind them M pods (pod1..podM, port 29090) on pod
// nodes node1..nodeK, two pods a node, reached over IPIP across a fabric switch (a bridge in the
// balancer's namespace), as Calico does between Kubernetes nodes. Pure, like topology.ts.
//
//   lb --br0-- gw<k> (eth0 10.I.0.10+k; eth1 10.I.254.10+k on br1)
//                       --br1 (fabric, IPIP)-- node<n> (eth0 10.I.254.100+n) --p<m>-- pod<m>
//   pod m's link is a /30 out of 10.I.200.0/24: node side 10.I.200.4m+1, pod 10.I.200.4m+2.
// The fabric MTU is 1480: the outer header the tunnel adds must still fit a 1500-byte veth.
import { TcplensError } from '../errors.js';
import type { LabNode, Route, VethLink } from './topology.js';

export const POD_PORT = 29090;
export const FABRIC_MTU = 1480;
export const GATEWAY_LIMITS = { gateways: 8, pods: 32 } as const;

/** Weights per chooser: the balancer's over the gateways, each gateway's over the pods. */
export interface Skew { lb: number[] | null; gw: Record<string, number[]> }

export interface GatewayTier {
  podNet: string;
  gateways: { node: string; fabric: string; weights: number[] }[];
  podNodes: { node: string; fabric: string; pods: string[] }[];
  pods: { node: string; host: string; ip: string }[];
  lbWeights: number[];
}

/** `--skew lb=70,30` and `--skew gw1=80,10,10` (repeatable) -> weights, checked against the shape. */
export function parseSkew(specs: string[], gateways: number, pods: number): Skew {
  const skew: Skew = { lb: null, gw: {} };
  for (const spec of specs) {
    const m = /^(lb|gw\d+)=(\d+(?:,\d+)*)$/.exec(spec.trim());
    const weights = m ? m[2].split(',').map(Number) : [];
    const want = m?.[1] === 'lb' ? gateways : pods;
    if (!m || weights.length !== want || weights.every((w) => w === 0) || (m[1] !== 'lb' && Number(m[1].slice(2)) > gateways)) {
      throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--skew ${spec}: expected lb=W1,...,W${gateways} (one weight a gateway) or gwK=W1,...,W${pods} (one a pod)`,
        'e.g. --skew lb=70,30 makes the balancer unfair; --skew gw1=80,10,10 makes gateway 1 unfair; weights are relative');
    }
    if (m[1] === 'lb') skew.lb = weights;
    else skew.gw[m[1]] = weights;
  }
  return skew;
}

/** Extra nodes, links and balancer ports for the tier; gateways take the servers' places on br0. */
export function planGatewayTier(I: number, gateways: number, pods: number, skew: Skew, ns: (n: string) => string, lb: LabNode):
  { tier: GatewayTier; nodes: LabNode[]; links: VethLink[]; gatewayExtras: (k: number, node: LabNode) => void } {
  const tier: GatewayTier = { podNet: `10.${I}.200.0/24`, gateways: [], podNodes: [], pods: [], lbWeights: skew.lb ?? Array(gateways).fill(1) };
  const nodes: LabNode[] = [];
  const links: VethLink[] = [];
  const podRoutes: Route[] = [];
  const nodeCount = Math.ceil(pods / 2);
  for (let n = 1; n <= nodeCount; n++) {
    const name = `node${n}`;
    const fabric = `10.${I}.254.${100 + n}`;
    const node: LabNode = { name, role: 'pod-node', netns: ns(name), forwarding: true, routes: [],
      ifaces: [{ dev: 'eth0', ip4: fabric, prefix4: 24, prefix6: 0, mtu: FABRIC_MTU }] };
    lb.ifaces.push({ dev: `n${n}`, ip4: '', prefix4: 0, prefix6: 0, master: 'br1' });
    links.push({ a: 'lb', aDev: `n${n}`, b: name, bDev: 'eth0' });
    tier.podNodes.push({ node: name, fabric, pods: [] });
    nodes.push(node);
  }
  for (let m = 1; m <= pods; m++) {
    const host = tier.podNodes[(m - 1) % nodeCount];
    const hostNode = nodes.find((x) => x.name === host.node)!;
    const name = `pod${m}`;
    const nodeSide = `10.${I}.200.${4 * m + 1}`, ip = `10.${I}.200.${4 * m + 2}`;
    hostNode.ifaces.push({ dev: `p${m}`, ip4: nodeSide, prefix4: 30, prefix6: 0 });
    nodes.push({ name, role: 'pod', netns: ns(name), forwarding: false, ifaces: [{ dev: 'eth0', ip4: ip, prefix4: 30, prefix6: 0 }],
      routes: [{ to: 'default', via: nodeSide, family: 4 }] });
    links.push({ a: host.node, aDev: `p${m}`, b: name, bDev: 'eth0' });
    host.pods.push(name);
    tier.pods.push({ node: name, host: host.node, ip });
    podRoutes.push({ to: `${ip}/32`, via: host.fabric, family: 4 });
  }
  const gatewayExtras = (k: number, node: LabNode) => {
    const fabric = `10.${I}.254.${10 + k}`;
    node.ifaces.push({ dev: 'eth1', ip4: fabric, prefix4: 24, prefix6: 0, mtu: FABRIC_MTU });
    node.routes.push(...podRoutes);
    lb.ifaces.push({ dev: `f${k}`, ip4: '', prefix4: 0, prefix6: 0, master: 'br1' });
    links.push({ a: 'lb', aDev: `f${k}`, b: node.name, bDev: 'eth1' });
    tier.gateways.push({ node: node.name, fabric, weights: skew.gw[node.name] ?? Array(pods).fill(1) });
  };
  return { tier, nodes, links, gatewayExtras };
}

/** Smooth weighted round robin (nginx's): exact shares over every sum-of-weights choices, spread out. */
export class WeightedRoundRobin<T> {
  private readonly current: number[];

  constructor(private readonly items: T[], private readonly weights: number[]) {
    this.current = weights.map(() => 0);
  }

  next(): T {
    const total = this.weights.reduce((a, b) => a + b, 0);
    let best = 0;
    for (let i = 0; i < this.items.length; i++) {
      this.current[i] += this.weights[i];
      if (this.current[i] > this.current[best]) best = i;
    }
    this.current[best] -= total;
    return this.items[best];
  }
}

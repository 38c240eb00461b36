// The gateway tier's IPIP tunnels: ipip.bpf.c loaded once a node (each with the map of which pod
// lives on which node), encapsulating at TC egress and decapsulating at TC ingress of the node's
// fabric device. The TC filters keep the programs after this process exits; deleting the
// namespaces removes them.
import { BpfObject } from '../kernel/bpf-object.js';
import { objectPath } from '../kernel/paths.js';
import { tcAttach, TC_EGRESS, TC_INGRESS } from '../kernel/tc.js';
import { parseAddr } from '../net/addr.js';
import { withNetns } from './netns.js';
import type { TcAttachmentRecord } from './state.js';
import type { GatewayTier } from './gateway-tier.js';

export const IPIP_OBJECT = objectPath('src/lab/ipip');

/** An IPv4 address as the u32 the kernel reads in network order. */
function be32(addr: string): Buffer {
  return Buffer.from(parseAddr(addr)!.bytes.subarray(0, 4));
}

/** Tunnel every fabric device of the tier: gateways' eth1, pod nodes' eth0. */
export function attachIpip(tier: GatewayTier, netnsOf: (node: string) => string): TcAttachmentRecord[] {
  const [net, prefix] = tier.podNet.split('/');
  const mask = Buffer.alloc(4);
  mask.writeUInt32BE(prefix === '0' ? 0 : (0xffffffff << (32 - Number(prefix))) >>> 0);
  const ends = [...tier.gateways.map((g) => ({ node: g.node, dev: 'eth1' })), ...tier.podNodes.map((n) => ({ node: n.node, dev: 'eth0' }))];
  const out: TcAttachmentRecord[] = [];
  for (const end of ends) {
    const obj = BpfObject.open(IPIP_OBJECT);
    try {
      obj.setRodata({ pod_net: be32(net), pod_mask: mask });
      obj.load();
      const map = obj.map('pod_nodes');
      for (const p of tier.pods) map.update(be32(p.ip), be32(tier.podNodes.find((n) => n.node === p.host)!.fabric));
      withNetns(netnsOf(end.node), () => {
        out.push({ node: end.node, dev: end.dev, progId: tcAttach(end.dev, TC_EGRESS, obj.program('ipip_encap').fd).progId });
        out.push({ node: end.node, dev: `${end.dev} ingress`, progId: tcAttach(end.dev, TC_INGRESS, obj.program('ipip_decap').fd).progId });
      });
    } finally {
      obj.close();
    }
  }
  return out;
}

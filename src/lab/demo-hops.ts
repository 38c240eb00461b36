// The demo's hop-distance section: each client's distance to the VIP as `tcplens hops` measures it
// from the client (TTL of the first reply, through the balancer, from the server that answered),
// and as `tcplens accept` sees it on the server (TTL of the client's handshake). The balancer
// forwards packets (as LVS does), so it is one of the hops: a client behind n routers is n + 1 away.
import { HopsProber } from '../capabilities/hops/hops.js';
import { parseAddr } from '../net/addr.js';
import { withNetns } from './netns.js';
import type { LabState } from './state.js';

export interface HopRow { client: string; routers: number; family: 4 | 6; probed: number | null; accepted: number | null }

/** Probe the VIP from inside every client's namespace (one socket filter, one probe per family). */
export async function probeVipHops(state: LabState, timeoutMs = 2000): Promise<Omit<HopRow, 'accepted'>[]> {
  const t = state.topology;
  const prober = HopsProber.open(16);
  try {
    const rows: Omit<HopRow, 'accepted'>[] = [];
    for (const c of t.clients) {
      const ns = t.nodes.find((n) => n.name === c.node)!.netns;
      for (const [vip, family] of [[t.vip4, 4], ...(t.vip6 ? [[t.vip6, 6]] : [])] as [string, 4 | 6][]) {
        const a = parseAddr(vip)!;
        const r = await prober.probe({ family, bytes: a.bytes, port: t.options.port }, { timeoutMs, inNetns: (fn) => withNetns(ns, fn) });
        rows.push({ client: c.node, routers: c.hops, family, probed: r.hops });
      }
    }
    return rows;
  } finally {
    prober.close();
  }
}

export function formatHops(rows: HopRow[]): string[] {
  const head = ['client', 'routers', 'family', 'client -> VIP (tcplens hops)', 'server <- client (tcplens accept)'];
  const body = rows.map((r) => [r.client, String(r.routers), `IPv${r.family}`, r.probed === null ? '-' : String(r.probed),
    r.accepted === null ? '-' : String(r.accepted)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const fmt = (cells: string[]) => `    ${cells.map((c, i) => c.padEnd(w[i])).join('  ')}`.trimEnd();
  return ['  Hop distance, from the TTL of the first packet each side received (the balancer forwards, so it is a hop):',
    fmt(head), ...body.map(fmt)];
}

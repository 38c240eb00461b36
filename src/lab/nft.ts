// The balancer's full NAT as an nftables ruleset (loaded in the balancer's namespace only):
// DNAT from the VIP to the servers in turn (numgen inc: round robin over new connections, as the
// nat chains see only a connection's first packet), then SNAT to the balancer's own address so
// the servers see the balancer, not the client: what LVS FULLNAT does.
import type { Topology } from './topology.js';

export const NFT_TABLE = 'tcplens_lab';

function roundRobin(addrs: string[]): string {
  return `numgen inc mod ${addrs.length} map { ${addrs.map((a, i) => `${i} : ${a}`).join(', ')} }`;
}

/** Unfair on purpose (--skew lb=...): each new connection draws a backend with these weights. */
function weighted(addrs: string[], weights: number[]): string {
  let at = 0;
  const ranges = addrs.flatMap((a, i) => {
    if (!weights[i]) return [];
    const r = `${at}-${at + weights[i] - 1} : ${a}`;
    at += weights[i];
    return [r];
  });
  return `numgen random mod ${at} map { ${ranges.join(', ')} }`;
}

function spread(addrs: string[], weights: number[] | null | undefined): string {
  return weights ? weighted(addrs, weights) : roundRobin(addrs);
}

export function nftRuleset(t: Topology): string {
  const port = t.options.port;
  const w = t.options.skew?.lb;
  const pre = [`ip daddr ${t.vip4} tcp dport ${port} counter dnat ip to ${spread(t.servers.map((s) => s.ip4), w)}`];
  const post = [`oifname "br0" ct status dnat meta nfproto ipv4 counter snat ip to ${t.lbAddr4}`];
  if (t.vip6 && t.lbAddr6) {
    pre.push(`ip6 daddr ${t.vip6} tcp dport ${port} counter dnat ip6 to ${spread(t.servers.map((s) => s.ip6!), w)}`);
    post.push(`oifname "br0" ct status dnat meta nfproto ipv6 counter snat ip6 to ${t.lbAddr6}`);
  }
  return [
    `table inet ${NFT_TABLE} {`,
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    ...pre.map((r) => `\t\t${r}`),
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...post.map((r) => `\t\t${r}`),
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** Connections DNAT'ed per family, from `nft -j list table` output (the rules' counters). */
export function dnatCounts(json: string): { ipv4: number; ipv6: number } {
  const out = { ipv4: 0, ipv6: 0 };
  const doc = JSON.parse(json) as { nftables: { rule?: { chain: string; expr: Record<string, unknown>[] } }[] };
  for (const item of doc.nftables) {
    const r = item.rule;
    if (!r || r.chain !== 'prerouting') continue;
    const counter = r.expr.find((e) => 'counter' in e)?.counter as { packets: number } | undefined;
    const v6 = JSON.stringify(r.expr).includes('"ip6"');
    out[v6 ? 'ipv6' : 'ipv4'] += counter?.packets ?? 0;
  }
  return out;
}

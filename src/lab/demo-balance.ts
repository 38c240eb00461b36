// `tcplens lab demo --gateways N --pods M [--skew ...]`: which layer balances badly, end to end.
// tcplens http captures inside every gateway's namespace (both legs: from the balancer, and on to
// the pods inside IPIP), a client sends requests through the VIP, and the balance summary names the
// skewed tier and node (or says it is balanced), with each gateway's own added latency.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpCapture } from '../capabilities/http/http.js';
import { BalanceAggregator, DEFAULT_GATEWAY_PORT, formatSummary, type SeenExchange } from '../capabilities/http/balance-summary.js';
import { resolveNetns } from '../kernel/netns.js';
import { onCleanup, stopSignal } from '../lifecycle.js';
import { interrupted } from './checkpoint.js';
import { POD_PORT } from './gateway-tier.js';
import { CLIENT_SCRIPT } from './demo.js';
import type { LabState } from './state.js';

/** Requests per (gateway, pod) pair: enough for a confident verdict on every chooser. */
export const DEMO_REQUESTS_PER_PAIR = 30;

/** The gateway tier the plain demo adds at its end (briefly): 2 gateways, 4 pods, gw1 skewed. */
export const BRIEF_TIER = { gateways: 2, pods: 4, skew: { lb: null, gw: { gw1: [70, 10, 10, 10] } } };

/**
 * The full summary (--gateways), or with brief only the tier lines and the verdict. ship gets every
 * exchange as the summary counted it (tagged with its gateway's node name), for lab demo --collector.
 */
export async function demoBalance(state: LabState, log: (line: string) => void, opts: { brief?: boolean; ship?: (e: SeenExchange) => void } = {}): Promise<string> {
  const brief = opts.brief ?? false;
  const t = state.topology;
  const tier = t.gatewayTier!;
  const nsOf = (node: string) => t.nodes.find((n) => n.name === node)!.netns;
  // Pods by name, gateways by node name (not their namespaces' names): the summary reads like the lab.
  const names = new Map(tier.pods.map((p) => [`${p.ip}:${POD_PORT}`, p.node]));
  const agg = new BalanceAggregator({ gatewayPort: DEFAULT_GATEWAY_PORT, names });
  const pointName = new Map(tier.gateways.map((g) => [nsOf(g.node), g.node]));
  const cap = new HttpCapture({ ports: [DEFAULT_GATEWAY_PORT, POD_PORT], hosts: [], snaplen: 0, limits: {} },
    (e) => {
      const seen = { ...e, netns: e.netns && { name: pointName.get(e.netns.name) ?? e.netns.name } };
      agg.add(seen);
      opts.ship?.(seen);
    });
  // Many small blocks: at a few packets a block, 16 big ones would be only 80 ms of slack for the reader.
  cap.startLive({ ifaces: [], netns: tier.gateways.map((g) => resolveNetns(nsOf(g.node))), blockTimeoutMs: 5, blockSize: 1 << 16, blockCount: 256 });
  const release = onCleanup("the demo's balance capture", () => cap.stop().then(() => undefined));
  try {
    const count = tier.gateways.length * tier.pods.length * DEMO_REQUESTS_PER_PAIR;
    log(`balance: ${count} requests from client1 through the VIP, captured in ${tier.gateways.length} gateways`);
    await promisify(execFile)('ip', ['netns', 'exec', nsOf(t.clients[0].node), process.execPath, CLIENT_SCRIPT, t.vip4, String(t.options.port), String(count)],
      { signal: stopSignal, maxBuffer: 64 << 20 }).catch((e) => {
      if (stopSignal.aborted) throw interrupted('while the client sent requests');
      throw e;
    });
    // Both legs of every request, or 2 s: the rings hand blocks over on a 5 ms timeout.
    for (let waited = 0; agg.samples < 2 * count && waited < 2000; waited += 50) await sleep(50);
    const drops = (await cap.stop()).kernel?.drops ?? 0;
    const skew = t.options.skew;
    const planted = [skew?.lb ? `lb=${skew.lb.join(',')}` : '', ...Object.entries(skew?.gw ?? {}).map(([g, w]) => `${g}=${w.join(',')}`)].filter(Boolean);
    return ['', `tcplens lab demo: client -> VIP ${t.vip4}:${t.options.port} -> balancer -> ${tier.gateways.length} gateways -> ${tier.pods.length} pods over IPIP; ` +
      `skew planted: ${planted.join(' ') || 'none'}; kernel drops ${drops}`, '',
      ...formatSummary(agg.summary()).filter((l) => !brief || !l.startsWith(' ')).map((l) => `  ${l}`), ''].join('\n');
  } finally {
    await cap.stop();
    release();
  }
}

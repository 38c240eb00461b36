// The demo's HTTP section: `tcplens http` in the balancer's namespace, on its server-facing ports,
// while the clients' requests go through: every exchange seen on the wire, balancer to server.
import { HttpCapture } from '../capabilities/http/http.js';
import type { HttpExchange } from '../net/http1.js';
import { resolveNetns } from '../kernel/netns.js';
import { quantile } from '../capabilities/http/balance.js';
import type { LabState } from './state.js';

export interface DemoHttp { exchanges: HttpExchange[]; stop(): Promise<{ drops: number }> }

export function startHttpCapture(state: LabState): DemoHttp {
  const t = state.topology;
  const lb = t.nodes.find((n) => n.role === 'lb')!;
  const ifaces = lb.ifaces.filter((f) => f.master === 'br0').map((f) => f.dev);
  const exchanges: HttpExchange[] = [];
  const cap = new HttpCapture({ ports: [t.options.port], hosts: [], snaplen: 0, limits: {} }, (e) => exchanges.push(e));
  cap.startLive({ ifaces, netns: [resolveNetns(lb.netns)], blockTimeoutMs: 5 });
  return {
    exchanges,
    stop: async () => ({ drops: (await cap.stop()).kernel?.drops ?? 0 }),
  };
}

export function formatHttp(exchanges: HttpExchange[], drops: number, requests: number): string[] {
  const ok = exchanges.filter((e) => e.status !== null && e.status < 400).length;
  const lat = exchanges.map((e) => e.latency_ms).filter((x): x is number => x !== null).sort((a, b) => a - b);
  const byServer = new Map<string, number>();
  for (const e of exchanges) byServer.set(e.server, (byServer.get(e.server) ?? 0) + 1);
  return [`  tcplens http on the balancer's server ports saw ${exchanges.length} HTTP exchanges for ${requests} requests ` +
    `(${ok} answered 2xx/3xx; per server ${[...byServer].map(([s, n]) => `${s} ${n}`).join(', ')}; ` +
    `latency p50 ${quantile(lat, 0.5)?.toFixed(2) ?? '-'} ms, p99 ${quantile(lat, 0.99)?.toFixed(2) ?? '-'} ms; kernel drops ${drops})`];
}

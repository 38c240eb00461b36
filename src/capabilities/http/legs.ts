// Joining the two legs of a request through a gateway: the exchange that came in from the
// balancer and the one the gateway sent on to a pod. With a probe id (X-Tcplens-Probe) on both,
// the join is exact. Without one, the heuristic: the outbound exchange has the same method and
// path, starts after the inbound request did, and has its answer before the inbound answer left
// (a proxy forwards a request and answers only once the pod has answered); of those, the earliest
// still unjoined. Under heavy concurrency on one path the heuristic can pair two concurrent
// requests crosswise: their own latencies stay right, the gateway's share is then approximate.
import type { HttpExchange } from '../../net/http1.js';

export interface JoinedRequest {
  inbound: HttpExchange;
  outbound: HttpExchange;
  by: 'probe' | 'timing';
  /** what the gateway itself added: inbound latency minus the pod's (null if either is unknown) */
  gateway_ms: number | null;
}

export interface LegJoin { joined: JoinedRequest[]; inboundOnly: HttpExchange[]; outboundOnly: HttpExchange[] }

const startMs = (e: HttpExchange) => Date.parse(e.time);
/** When the answer's first byte came, as far as the record says (request time + latency). */
const answerMs = (e: HttpExchange) => (e.latency_ms === null ? null : startMs(e) + e.latency_ms);

function gatewayMs(inbound: HttpExchange, outbound: HttpExchange): number | null {
  if (inbound.latency_ms === null || outbound.latency_ms === null) return null;
  return Math.max(0, Math.round((inbound.latency_ms - outbound.latency_ms) * 1000) / 1000);
}

export function joinLegs(inbound: HttpExchange[], outbound: HttpExchange[]): LegJoin {
  const joined: JoinedRequest[] = [];
  const freeOut = new Set(outbound);
  const byProbe = new Map<string, HttpExchange[]>();
  for (const o of outbound) if (o.probe) byProbe.set(o.probe, [...(byProbe.get(o.probe) ?? []), o]);
  const inboundOnly: HttpExchange[] = [];
  const waiting: HttpExchange[] = [];
  for (const i of inbound) {
    const o = i.probe ? byProbe.get(i.probe)?.find((x) => freeOut.has(x)) : undefined;
    if (o) {
      freeOut.delete(o);
      joined.push({ inbound: i, outbound: o, by: 'probe', gateway_ms: gatewayMs(i, o) });
    } else waiting.push(i);
  }
  const candidates = [...freeOut].sort((a, b) => startMs(a) - startMs(b));
  for (const i of [...waiting].sort((a, b) => startMs(a) - startMs(b))) {
    const from = startMs(i), until = answerMs(i);
    const o = candidates.find((x) => freeOut.has(x) && x.method === i.method && x.path === i.path && startMs(x) >= from &&
      (until === null || (answerMs(x) ?? Infinity) <= until));
    if (!o) {
      inboundOnly.push(i);
      continue;
    }
    freeOut.delete(o);
    joined.push({ inbound: i, outbound: o, by: 'timing', gateway_ms: gatewayMs(i, o) });
  }
  return { joined, inboundOnly, outboundOnly: outbound.filter((o) => freeOut.has(o)) };
}

// tcplens http --balance and --probe RUN, the pure part: captured exchanges -> Choices (which tier,
// which chooser, which backend) -> the summary object; and a probe run's exchanges -> the path of
// each probe. The collector's /v1/balance and /v1/probes apply the same rule in SQL.
//
// The rule (one, documented in the README): an exchange is seen at a capture point (the --netns
// it was captured in, as given; else this host's name). A request TO the gateway port (default 80:
// the gateway service's port, a NodePort on a real node) came in from the balancer: tier 1,
// chooser "lb", backend = the capture point. Any other request seen there is the gateway's own,
// sent on to a pod: tier 2, chooser = the capture point, backend = the server address (or the pod's
// name, when it is known). An error is no answer, or a status >= 500.
import { hostname } from 'node:os';
import { TcplensError } from '../../errors.js';
import type { HttpExchange } from '../../net/http1.js';
import { balance, quantile, type BackendShare, type Choice, type ChooserSpread, type Expectation, type Verdict } from './balance.js';
import { joinLegs, type JoinedRequest } from './legs.js';

export const DEFAULT_GATEWAY_PORT = 80;
/** Exchanges kept per capture point for joining the two legs (the latest; the counts use every one). */
export const JOIN_WINDOW = 20_000;

/** What balance-summary reads of an exchange (http.ts's CapturedExchange fits it). */
export type SeenExchange = HttpExchange & { netns?: { name: string } };

export interface BalanceRules {
  gatewayPort: number;
  /** server address (ip:port) -> a name for it (a pod's name), when known */
  names?: Map<string, string>;
  /** the capture point of an exchange captured in our own namespace */
  localPoint?: string;
}

export const capturePoint = (e: SeenExchange, rules: BalanceRules): string => e.netns?.name ?? rules.localPoint ?? hostname();
export const legOf = (e: SeenExchange, gatewayPort: number): 'in' | 'out' => (e.server.endsWith(`:${gatewayPort}`) ? 'in' : 'out');
const isError = (e: SeenExchange) => e.error !== null || e.status === null || e.status >= 500;

export function choiceOf(e: SeenExchange, rules: BalanceRules): Choice {
  const point = capturePoint(e, rules);
  const base = { latencyMs: e.latency_ms, error: isError(e) };
  return legOf(e, rules.gatewayPort) === 'in'
    ? { tier: 1, chooser: 'lb', backend: point, ...base }
    : { tier: 2, chooser: point, backend: rules.names?.get(e.server) ?? e.server, ...base };
}

/** CHOOSER=W1,W2,... (repeatable): weights over that chooser's backends in name order, as the
 * collector's expect=. Checked for form here; against the backends seen when the summary is made. */
export type ExpectSpec = Map<string, number[]>;

export function parseExpectFlags(specs: string[]): ExpectSpec {
  const out: ExpectSpec = new Map();
  for (const spec of specs) {
    const m = /^([A-Za-z0-9._:/[\]-]{1,128})=(\d{1,6}(?:\.\d{1,6})?(?:,\d{1,6}(?:\.\d{1,6})?){0,255})$/.exec(spec);
    const weights = m ? m[2].split(',').map(Number) : [];
    if (!m || weights.every((w) => w === 0)) {
      throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--expect ${spec.slice(0, 80)}: expected CHOOSER=W1,W2,...`,
        'e.g. --expect lb=70,30 (the balancer over the gateways) or --expect tl-gw-gw1=2,1,1; weights over the backends in name order, not all zero');
    }
    if (out.has(m[1])) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--expect for ${m[1]} given twice`, 'one --expect per chooser');
    out.set(m[1], weights);
  }
  return out;
}

/** Tier-1 backends (a gateway) carry what the gateway itself added, from its two legs joined. */
export type SummaryBackend = BackendShare & { added_p50_ms?: number | null; added_p99_ms?: number | null; joined?: number };
export type SummaryTier = Omit<ChooserSpread, 'backends'> & { backends: SummaryBackend[] };
export interface BalanceSummary { tiers: SummaryTier[]; verdict: Verdict; problems: string[] }

/** The weights of an --expect turned into backend -> weight once the chooser's backends are known;
 * a chooser not seen, or a count that does not match, is a problem (and the verdict is then not confident). */
function expectation(spec: ExpectSpec, choices: Choice[]): { expect: Expectation; problems: string[] } {
  const expect: Expectation = new Map();
  const problems: string[] = [];
  for (const [chooser, weights] of spec) {
    const names = [...new Set(choices.filter((c) => c.chooser === chooser).map((c) => c.backend))].sort();
    if (!names.length) problems.push(`--expect ${chooser}=...: no requests from that chooser yet`);
    else if (names.length !== weights.length) problems.push(`--expect ${chooser}=...: ${weights.length} weights for ${names.length} backends (${names.join(', ')})`);
    else expect.set(chooser, new Map(names.map((n, i) => [n, weights[i]])));
  }
  return { expect, problems };
}

/** Accumulates exchanges as they come (counts over all of them; the leg join over a recent window). */
export class BalanceAggregator {
  private readonly choices: Choice[] = [];
  private readonly legs = new Map<string, { in: HttpExchange[]; out: HttpExchange[] }>();

  constructor(private readonly rules: BalanceRules, private readonly expect: ExpectSpec = new Map()) {}

  add(e: SeenExchange): void {
    this.choices.push(choiceOf(e, this.rules));
    const point = capturePoint(e, this.rules);
    let l = this.legs.get(point);
    if (!l) this.legs.set(point, l = { in: [], out: [] });
    const side = l[legOf(e, this.rules.gatewayPort)];
    side.push(e);
    if (side.length > JOIN_WINDOW * 1.5) side.splice(0, side.length - JOIN_WINDOW);
  }

  get samples(): number { return this.choices.length; }

  summary(): BalanceSummary {
    const { expect, problems } = expectation(this.expect, this.choices);
    const b = balance(this.choices, expect);
    const tiers: SummaryTier[] = b.tiers.map((t) => (t.tier !== 1 ? t : { ...t, backends: t.backends.map((be) => ({ ...be, ...this.added(be.name) })) }));
    return { tiers, verdict: problems.length ? { ...b.verdict, confident: false } : b.verdict, problems };
  }

  private added(point: string): { added_p50_ms: number | null; added_p99_ms: number | null; joined: number } {
    const l = this.legs.get(point);
    const joined = l ? joinLegs(l.in, l.out).joined : [];
    const ms = joined.map((j) => j.gateway_ms).filter((x): x is number => x !== null).sort((a, b) => a - b);
    return { added_p50_ms: quantile(ms, 0.5), added_p99_ms: quantile(ms, 0.99), joined: joined.length };
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(2));

/** The one-line verdict: the tier and node, and how sure. */
export function verdictLine(s: BalanceSummary): string {
  const v = s.verdict;
  const sure = `${v.samples} samples, ${v.confident ? 'confident' : 'not confident'}`;
  if (s.problems.length) return `verdict: cannot tell: ${s.problems.join('; ')} (${sure})`;
  if (!v.balanced) {
    const t = s.tiers.find((x) => x.tier === v.tier && x.chooser === v.node)!;
    const worst = [...t.backends].sort((a, b) => Math.abs(b.share - b.expected_share) - Math.abs(a.share - a.expected_share))[0];
    return `verdict: SKEWED at tier ${v.tier} (${v.tier === 1 ? 'the balancer\'s choice of gateway' : 'a gateway\'s choice of pod'}): ${v.node}` +
      ` sends ${pct(worst.share)} to ${worst.name} (expected ${pct(worst.expected_share)}); p=${t.p_value.toExponential(1)} (${sure})`;
  }
  if (!v.confident) {
    const few = s.tiers.filter((t) => !t.confident).map((t) => `${t.chooser} ${t.samples}`).join(', ');
    return `verdict: not enough samples to tell${few ? ` (${few}; need >= 20 expected per backend)` : ''} (${sure})`;
  }
  return `verdict: balanced: no tier skews beyond chance and by >= 20% of a share (${sure})`;
}

/** The summary as text: per tier, per chooser, per backend; then the verdict. */
export function formatSummary(s: BalanceSummary): string[] {
  const lines: string[] = [];
  for (const t of s.tiers) {
    lines.push(`tier ${t.tier}  ${t.chooser} -> ${t.tier === 1 ? 'gateways' : 'pods'}: ${t.samples} requests, skew ${t.skew.toFixed(2)} (max/mean), cv ${t.cv.toFixed(2)}, ` +
      `p=${t.p_value.toPrecision(2)}${t.skewed ? ', SKEWED' : t.confident ? '' : ', too few samples'}`);
    const head = ['BACKEND', 'REQUESTS', 'SHARE', 'EXPECTED', 'P50_MS', 'P99_MS', 'ERRORS', ...(t.tier === 1 ? ['ADDED_P50', 'ADDED_P99'] : [])];
    const rows = t.backends.map((b) => [b.name, String(b.requests), pct(b.share), pct(b.expected_share), ms(b.p50_ms), ms(b.p99_ms), String(b.errors),
      ...(t.tier === 1 ? [ms(b.added_p50_ms), ms(b.added_p99_ms)] : [])]);
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const r of [head, ...rows]) lines.push(`  ${r.map((c, i) => c.padEnd(w[i])).join('  ')}`.trimEnd());
  }
  lines.push(verdictLine(s));
  return lines;
}

/** The --json object: tiers and verdict (problems only when there are some). */
export function summaryJson(s: BalanceSummary): object {
  return { tiers: s.tiers, verdict: s.verdict, ...(s.problems.length ? { problems: s.problems } : {}) };
}

// --probe RUN: where each probe of the run went.

export interface ProbeHop { point: string; leg: 'in' | 'out'; client: string; server: string; latency_ms: number | null; status: number | null }

export interface ProbePath {
  probe: string;
  /** the balancer's address as the gateway saw it (FULLNAT's source), else the client's */
  balancer: string | null;
  gateway: string | null;
  pod: string | null;
  /** at the gateway: from the request in to the answer out */
  latency_ms: number | null;
  /** of that, the pod's part (the outbound leg) and the gateway's own */
  pod_ms: number | null;
  gateway_ms: number | null;
  status: number | null;
  hops: ProbeHop[];
}

export interface ProbeDistribution { run: string; probes: number; gateways: Record<string, number>; pods: Record<string, number> }

const seqOf = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1));

/** Per probe of the run: its hops (the sightings of its tag), gateway = capture point of its inbound
 * leg, pod = server of its outbound leg there, latencies joined as the legs are. */
export function probePaths(run: string, exchanges: SeenExchange[], rules: BalanceRules): { paths: ProbePath[]; distribution: ProbeDistribution } {
  const byProbe = new Map<string, SeenExchange[]>();
  for (const e of exchanges) {
    if (!e.probe?.startsWith(`${run}-`)) continue;
    if (!byProbe.has(e.probe)) byProbe.set(e.probe, []);
    byProbe.get(e.probe)!.push(e);
  }
  const gateways: Record<string, number> = Object.create(null), pods: Record<string, number> = Object.create(null);
  const paths = [...byProbe].sort(([a], [b]) => seqOf(a) - seqOf(b) || a.localeCompare(b)).map(([probe, es]) => {
    const hops: ProbeHop[] = es.map((e) => ({ point: capturePoint(e, rules), leg: legOf(e, rules.gatewayPort), client: e.client, server: e.server, latency_ms: e.latency_ms, status: e.status }));
    const inbound = es.find((e) => legOf(e, rules.gatewayPort) === 'in') ?? null;
    const gateway = inbound ? capturePoint(inbound, rules) : null;
    // the outbound leg of the same gateway (another capture point may see it too: a pod's node)
    const outbound = es.find((e) => legOf(e, rules.gatewayPort) === 'out' && (gateway === null || capturePoint(e, rules) === gateway)) ?? null;
    const join: JoinedRequest | undefined = inbound && outbound ? joinLegs([inbound], [outbound]).joined[0] : undefined;
    const pod = outbound ? rules.names?.get(outbound.server) ?? outbound.server : null;
    if (gateway !== null) gateways[gateway] = (gateways[gateway] ?? 0) + 1;
    if (pod !== null) pods[pod] = (pods[pod] ?? 0) + 1;
    return {
      probe, balancer: inbound?.client.slice(0, inbound.client.lastIndexOf(':')) ?? null, gateway, pod,
      latency_ms: inbound?.latency_ms ?? null, pod_ms: outbound?.latency_ms ?? null, gateway_ms: join?.gateway_ms ?? null,
      status: (inbound ?? outbound)?.status ?? null, hops,
    };
  });
  return { paths, distribution: { run, probes: paths.length, gateways, pods } };
}

/** One probe's path as a line: balancer -> gateway -> pod, with the latency at each hop. */
export function formatProbePath(p: ProbePath): string {
  return `${p.probe}  ${p.balancer ?? '?'} -> ${p.gateway ?? '?'} (${ms(p.latency_ms)} ms, own ${ms(p.gateway_ms)} ms) -> ${p.pod ?? '?'} (${ms(p.pod_ms)} ms)  status ${p.status ?? '-'}`;
}

export function formatDistribution(d: ProbeDistribution): string[] {
  const share = (m: Record<string, number>) => Object.keys(m).sort().map((k) => `${k} ${m[k]} (${pct(m[k] / Math.max(1, d.probes))})`).join(', ') || '-';
  return [`run ${d.run}: ${d.probes} probes seen`, `  over gateways: ${share(d.gateways)}`, `  over pods: ${share(d.pods)}`];
}

// balance-summary: exchanges -> tiers (by the gateway-port rule) -> summary and verdict; the legs
// joined into the gateway's own latency; a probe run's paths and distribution; --expect parsing.
import test from 'node:test';
import assert from 'node:assert/strict';
import { BalanceAggregator, choiceOf, formatSummary, parseExpectFlags, probePaths, summaryJson, verdictLine, type SeenExchange } from '../../src/capabilities/http/balance-summary.js';
import { TcplensError } from '../../src/errors.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
let n = 0;
function ex(point: string, server: string, latency: number, o: Partial<SeenExchange> = {}, startMs = T0 + n++): SeenExchange {
  return { time: new Date(startMs).toISOString(), client: '10.1.0.1:40000', server, method: 'GET', host: null, path: '/', status: 200,
    req_bytes: 10, resp_bytes: 10, latency_ms: latency, vlan: null, tunnel: null, probe: null, error: null, netns: { name: point }, ...o };
}
const rules = { gatewayPort: 80 };

/** One request through gateway `gw` to `pod`: both legs, the pod leg inside the gateway's. */
function request(agg: BalanceAggregator, gw: string, pod: string, i: number, probe: string | null = null) {
  const t = T0 + i * 10;
  agg.add(ex(gw, '10.1.0.11:80', 3, { path: `/r${i}`, probe }, t));
  agg.add(ex(gw, `${pod}:29090`, 2, { path: `/r${i}`, probe }, t + 0.5));
}

test('the rule: to the gateway port is tier 1 (lb -> capture point), anything else tier 2 (capture point -> server, or its name)', { timeout: 5000 }, () => {
  assert.deepEqual(choiceOf(ex('gw1', '10.1.0.11:80', 1), rules), { tier: 1, chooser: 'lb', backend: 'gw1', latencyMs: 1, error: false });
  assert.deepEqual(choiceOf(ex('gw1', '10.1.200.6:29090', 1, { status: 503 }), rules), { tier: 2, chooser: 'gw1', backend: '10.1.200.6:29090', latencyMs: 1, error: true });
  assert.equal(choiceOf(ex('gw1', '10.1.200.6:29090', 1), { ...rules, names: new Map([['10.1.200.6:29090', 'pod1']]) }).backend, 'pod1');
  assert.equal(choiceOf(ex('gw1', '10.1.200.6:29090', 1, { status: null, error: 'incomplete' as never }), rules).error, true);
  assert.equal(choiceOf(ex('gw1', '10.1.0.11:8080', 1), { gatewayPort: 8080 }).tier, 1);
  const { netns: _, ...local } = ex('x', '10.1.0.11:80', 1);
  assert.equal(choiceOf(local, { ...rules, localPoint: 'node-a' }).backend, 'node-a');
});

test('even spread over 2 gateways x 3 pods: balanced, confident; added latency = inbound - outbound per gateway', { timeout: 5000 }, () => {
  const agg = new BalanceAggregator(rules);
  for (let i = 0; i < 600; i++) request(agg, `gw${(i % 2) + 1}`, `10.1.200.${Math.floor(i / 2) % 3}`, i);
  const s = agg.summary();
  assert.deepEqual(s.verdict, { balanced: true, tier: null, node: null, samples: 1200, confident: true });
  assert.deepEqual(s.tiers.map((t) => [t.tier, t.chooser, t.samples]), [[1, 'lb', 600], [2, 'gw1', 300], [2, 'gw2', 300]]);
  const gw1 = s.tiers[0].backends.find((b) => b.name === 'gw1')!;
  assert.deepEqual([gw1.requests, gw1.share, gw1.expected_share, gw1.added_p50_ms, gw1.added_p99_ms, gw1.joined], [300, 0.5, 0.5, 1, 1, 300]);
  assert.ok(s.tiers[1].backends.every((b) => b.added_p50_ms === undefined), 'added latency is a gateway figure (tier 1 backends)');
  assert.match(verdictLine(s), /^verdict: balanced: .*1200 samples, confident/);
  const text = formatSummary(s).join('\n');
  assert.match(text, /tier 1 {2}lb -> gateways: 600 requests, skew 1\.00/);
  assert.match(text, /gw1 +300 +50\.0% +50\.0% +3\.00 +3\.00 +0 +1\.00 +1\.00/);
  const j = JSON.parse(JSON.stringify(summaryJson(s))) as { tiers: { backends: Record<string, unknown>[] }[]; verdict: object };
  for (const k of ['name', 'requests', 'share', 'expected_share', 'p50_ms', 'p99_ms', 'errors', 'added_p50_ms', 'added_p99_ms']) assert.ok(k in j.tiers[0].backends[0], k);
  assert.deepEqual(Object.keys(j.verdict), ['balanced', 'tier', 'node', 'samples', 'confident']);
});

test('a skewed gateway is named at tier 2; a skewed balancer at tier 1 (before the gateways it skews)', { timeout: 5000 }, () => {
  const gwSkew = new BalanceAggregator(rules);
  for (let i = 0; i < 600; i++) request(gwSkew, `gw${(i % 2) + 1}`, i % 2 === 0 && i % 10 < 8 ? '10.1.200.0' : `10.1.200.${Math.floor(i / 2) % 3}`, i);
  const v = gwSkew.summary().verdict;
  assert.deepEqual([v.balanced, v.tier, v.node, v.confident], [false, 2, 'gw1', true]);
  assert.match(verdictLine(gwSkew.summary()), /SKEWED at tier 2 .*: gw1 sends/);
  const lbSkew = new BalanceAggregator(rules);
  for (let i = 0; i < 600; i++) request(lbSkew, i % 10 < 7 ? 'gw1' : 'gw2', `10.1.200.${i % 3}`, i);
  const w = lbSkew.summary().verdict;
  assert.deepEqual([w.balanced, w.tier, w.node], [false, 1, 'lb']);
});

test('--expect: the configured weights make 70/30 balanced; a count that does not fit is not confident; bad forms are coded', { timeout: 5000 }, () => {
  const agg = new BalanceAggregator(rules, parseExpectFlags(['lb=70,30']));
  for (let i = 0; i < 600; i++) request(agg, i % 10 < 7 ? 'gw1' : 'gw2', `10.1.200.${i % 3}`, i);
  const s = agg.summary();
  assert.deepEqual(s.verdict, { balanced: true, tier: null, node: null, samples: 1200, confident: true });
  assert.equal(s.tiers[0].backends[0].expected_share, 0.7);
  const wrong = new BalanceAggregator(rules, parseExpectFlags(['lb=1,1,1']));
  for (let i = 0; i < 600; i++) request(wrong, i % 10 < 7 ? 'gw1' : 'gw2', `10.1.200.${i % 3}`, i);
  const ws = wrong.summary();
  assert.equal(ws.verdict.confident, false);
  assert.match(ws.problems[0], /3 weights for 2 backends \(gw1, gw2\)/);
  assert.match(verdictLine(ws), /^verdict: cannot tell/);
  for (const bad of ['lb', 'lb=', 'lb=a,b', 'lb=0,0', '=1,2', 'lb=1;2']) {
    assert.throws(() => parseExpectFlags([bad]), (e: unknown) => e instanceof TcplensError && e.code === 'TCPLENS_ERR_BAD_FLAG', bad);
  }
  assert.throws(() => parseExpectFlags(['lb=1,2', 'lb=2,1']), /given twice/);
});

test('too few samples: a lopsided handful is never a confident verdict', { timeout: 5000 }, () => {
  const agg = new BalanceAggregator(rules);
  for (let i = 0; i < 8; i++) request(agg, i < 7 ? 'gw1' : 'gw2', '10.1.200.1', i);
  const s = agg.summary();
  assert.equal(s.verdict.confident, false);
  assert.equal(s.verdict.tier, null);
  assert.match(verdictLine(s), /not enough samples/);
});

test('probe paths: per probe the gateway, pod and latency at each hop; the distribution of the run', { timeout: 5000 }, () => {
  const es: SeenExchange[] = [];
  for (let i = 0; i < 4; i++) {
    const gw = `gw${(i % 2) + 1}`, t = T0 + i * 10;
    es.push(ex(gw, '10.1.0.11:80', 5, { probe: `r1-${i}`, client: '10.1.0.1:4000' }, t));
    es.push(ex(gw, `10.1.200.${i % 3}:29090`, 3.5, { probe: `r1-${i}` }, t + 0.4));
    es.push(ex('node1', `10.1.200.${i % 3}:29090`, 3.2, { probe: `r1-${i}` }, t + 0.5)); // the pod's node sees it too
  }
  es.push(ex('gw1', '10.1.0.11:80', 1, { probe: 'other-0' }));
  const { paths, distribution } = probePaths('r1', es, { ...rules, names: new Map([['10.1.200.0:29090', 'pod1']]) });
  assert.deepEqual(paths.map((p) => [p.probe, p.gateway, p.pod, p.balancer]), [['r1-0', 'gw1', 'pod1', '10.1.0.1'], ['r1-1', 'gw2', '10.1.200.1:29090', '10.1.0.1'],
    ['r1-2', 'gw1', '10.1.200.2:29090', '10.1.0.1'], ['r1-3', 'gw2', 'pod1', '10.1.0.1']]);
  for (const p of paths) {
    assert.deepEqual([p.latency_ms, p.pod_ms, p.gateway_ms, p.hops.length], [5, 3.5, 1.5, 3]);
  }
  assert.deepEqual(JSON.parse(JSON.stringify(distribution)), { run: 'r1', probes: 4, gateways: { gw1: 2, gw2: 2 }, pods: { pod1: 2, '10.1.200.1:29090': 1, '10.1.200.2:29090': 1 } });
});

// The balance verdict on synthetic spreads: even tiers are balanced (and confident only with
// enough samples), a skewed balancer or gateway is named, weights given with --expect are what
// "even" means, and the chi-square tail matches the textbook table.
import test from 'node:test';
import assert from 'node:assert/strict';
import { balance, chiSquareSurvival, quantile, type Choice } from '../../src/capabilities/http/balance.js';

const T = { timeout: 10000 };

/** A small deterministic generator (mulberry32), so a spread is the same on every run. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n requests: the balancer picks a gateway by lbWeights, each gateway a pod by its weights. */
function traffic(n: number, lbWeights: number[], podWeights: Record<string, number[]>, seed = 1): Choice[] {
  const r = rng(seed);
  const pick = (w: number[]) => { let x = r() * w.reduce((a, b) => a + b, 0); for (let i = 0; i < w.length; i++) { x -= w[i]; if (x < 0) return i; } return w.length - 1; };
  const out: Choice[] = [];
  for (let i = 0; i < n; i++) {
    const gw = `gw${pick(lbWeights) + 1}`;
    out.push({ tier: 1, chooser: 'lb', backend: gw, latencyMs: 1 + r(), error: false });
    const pw = podWeights[gw] ?? [1, 1, 1];
    out.push({ tier: 2, chooser: gw, backend: `pod${pick(pw) + 1}`, latencyMs: 2 + r(), error: r() < 0.01 });
  }
  return out;
}

test('chi-square tail: the textbook critical values', T, () => {
  for (const [x, k, p] of [[3.841, 1, 0.05], [6.635, 1, 0.01], [10.828, 1, 0.001], [9.488, 4, 0.05], [18.467, 4, 0.001], [0, 3, 1]] as const) {
    assert.ok(Math.abs(chiSquareSurvival(x, k) - p) < p * 0.01 + 1e-9, `chi2(${x}, ${k}) = ${chiSquareSurvival(x, k)}, want ${p}`);
  }
});

test('quantiles pick an observed value', T, () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2);
  assert.equal(quantile([1, 2, 3, 4], 0.99), 4);
  assert.equal(quantile([], 0.5), null);
});

test('even tiers: balanced, and confident with enough samples', T, () => {
  const { tiers, verdict } = balance(traffic(3000, [1, 1], {}));
  assert.deepEqual(verdict, { balanced: true, tier: null, node: null, samples: 6000, confident: true });
  const lb = tiers.find((t) => t.chooser === 'lb')!;
  assert.deepEqual(lb.backends.map((b) => b.name), ['gw1', 'gw2']);
  for (const b of lb.backends) assert.ok(Math.abs(b.share - 0.5) < 0.05 && b.expected_share === 0.5);
  assert.ok(lb.skew < 1.1 && lb.cv < 0.1);
});

test('a skewed balancer (70/30) is named at tier 1, with shares near its weights', T, () => {
  const { tiers, verdict } = balance(traffic(2000, [70, 30], {}));
  assert.deepEqual([verdict.balanced, verdict.tier, verdict.node, verdict.confident], [false, 1, 'lb', true]);
  const gw1 = tiers.find((t) => t.chooser === 'lb')!.backends.find((b) => b.name === 'gw1')!;
  assert.ok(Math.abs(gw1.share - 0.7) < 0.05, String(gw1.share));
});

test('a skewed gateway (80/10/10) is named at tier 2 while the balancer is even', T, () => {
  const { verdict } = balance(traffic(3000, [1, 1], { gw1: [80, 10, 10] }));
  assert.deepEqual([verdict.balanced, verdict.tier, verdict.node], [false, 2, 'gw1']);
});

test('--expect weights define even: 70/30 expected and seen is balanced', T, () => {
  const expect = new Map([['lb', new Map([['gw1', 70], ['gw2', 30]])]]);
  assert.equal(balance(traffic(2000, [70, 30], {}), expect).verdict.balanced, true);
});

test('too few samples: never a confident verdict, skewed or not', T, () => {
  const { verdict } = balance(traffic(30, [70, 30], { gw1: [80, 10, 10] }));
  assert.equal(verdict.confident, false);
  assert.equal(verdict.balanced, true, 'not enough to call it skewed either');
});

test('a tiny but "significant" difference over a huge sample is not a skew', T, () => {
  const { verdict } = balance(traffic(200000, [51, 49], {}));
  assert.equal(verdict.balanced, true);
});

// Which layer balances badly: per tier, how requests spread over backends compared with what was
// expected, and a verdict that names the tier and the node whose choices skew, or says it cannot
// tell yet. Pure: exchanges in, numbers out (tcplens http --balance and the collector share it).
//
// Tier 1 is the balancer's choice of gateway (one chooser: the balancer); tier 2 is each
// gateway's choice of pod (one chooser per gateway). A chooser skews when its spread differs from
// the expected one beyond chance (a chi-square test, p < ALPHA) AND by enough to matter (some
// backend's share off its expected share by MIN_EFFECT of the expected, relatively): with a
// million requests, a 50.3/49.7 split is "significant" but nobody's problem.

/** One observation: a chooser (balancer or gateway) sent a request to a backend. */
export interface Choice { tier: 1 | 2; chooser: string; backend: string; latencyMs: number | null; error: boolean }

export interface BackendShare {
  name: string;
  requests: number;
  share: number;
  expected_share: number;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
}

export interface ChooserSpread {
  tier: 1 | 2;
  chooser: string;
  samples: number;
  backends: BackendShare[];
  /** max share / mean share (1 = perfectly even over the backends seen) */
  skew: number;
  /** coefficient of variation of the shares */
  cv: number;
  /** chi-square goodness of fit against the expected shares */
  p_value: number;
  /** enough samples for the test to mean something (every expected count >= MIN_EXPECTED) */
  confident: boolean;
  skewed: boolean;
}

export interface Verdict { balanced: boolean; tier: 1 | 2 | null; node: string | null; samples: number; confident: boolean }

export const ALPHA = 0.001;
export const MIN_EXPECTED = 20;
export const MIN_EFFECT = 0.2;

/** Expected weights per chooser ("lb" or a gateway name) -> backend -> weight; missing = equal. */
export type Expectation = Map<string, Map<string, number>>;

export function quantile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/** One backend's requests from one chooser, already counted (the collector counts in SQL). */
export type BackendTally = Omit<BackendShare, 'share' | 'expected_share'>;

/** The spread of one chooser's choices. */
export function spreadOf(tier: 1 | 2, chooser: string, choices: Choice[], expected?: Map<string, number>): ChooserSpread {
  const names = [...new Set(choices.map((c) => c.backend))];
  return spreadOfTallies(tier, chooser, names.map((name) => {
    const mine = choices.filter((c) => c.backend === name);
    const lat = mine.map((c) => c.latencyMs).filter((x): x is number => x !== null).sort((a, b) => a - b);
    return { name, requests: mine.length, p50_ms: quantile(lat, 0.5), p99_ms: quantile(lat, 0.99), errors: mine.filter((c) => c.error).length };
  }), expected);
}

/** The spread of one chooser over counted backends; an expected backend never chosen counts as 0 requests. */
export function spreadOfTallies(tier: 1 | 2, chooser: string, tallies: BackendTally[], expected?: Map<string, number>): ChooserSpread {
  const names = [...new Set([...tallies.map((t) => t.name), ...(expected ? expected.keys() : [])])].sort();
  const total = tallies.reduce((s, t) => s + t.requests, 0);
  const weightSum = names.reduce((s, n) => s + (expected?.get(n) ?? 1), 0);
  const backends = names.map((name) => {
    const t = tallies.find((x) => x.name === name) ?? { name, requests: 0, p50_ms: null, p99_ms: null, errors: 0 };
    return {
      name, requests: t.requests, share: total ? t.requests / total : 0,
      expected_share: (expected?.get(name) ?? 1) / weightSum,
      p50_ms: t.p50_ms, p99_ms: t.p99_ms, errors: t.errors,
    };
  });
  const shares = backends.map((b) => b.share);
  const mean = shares.length ? 1 / shares.length : 0;
  const sd = Math.sqrt(shares.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, shares.length));
  let chi = 0;
  for (const b of backends) {
    const e = b.expected_share * total;
    if (e > 0) chi += (b.requests - e) ** 2 / e;
  }
  const p = backends.length > 1 ? chiSquareSurvival(chi, backends.length - 1) : 1;
  const confident = backends.length > 1 && backends.every((b) => b.expected_share * total >= MIN_EXPECTED);
  const effect = Math.max(0, ...backends.map((b) => (b.expected_share ? Math.abs(b.share - b.expected_share) / b.expected_share : 0)));
  return {
    tier, chooser, samples: total, backends,
    skew: mean ? Math.max(...shares) / mean : 0, cv: mean ? sd / mean : 0, p_value: p,
    confident, skewed: confident && p < ALPHA && effect >= MIN_EFFECT,
  };
}

/** Every chooser's spread, tier 1 first, and the verdict. */
export function balance(choices: Choice[], expect: Expectation = new Map()): { tiers: ChooserSpread[]; verdict: Verdict } {
  const groups = new Map<string, Choice[]>();
  for (const c of choices) {
    const k = `${c.tier}\u0000${c.chooser}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(c);
  }
  const tiers = [...groups].map(([k, cs]) => {
    const [tier, chooser] = k.split('\u0000');
    return spreadOf(Number(tier) as 1 | 2, chooser, cs, expect.get(chooser));
  }).sort((a, b) => a.tier - b.tier || a.chooser.localeCompare(b.chooser));
  return { tiers, verdict: verdictOf(tiers, choices.length) };
}

/** The worst skewed chooser (tier 1 before tier 2: a skewed balancer also skews what gateways
 * see, not the other way round); never a confident "balanced" without enough samples. */
export function verdictOf(tiers: ChooserSpread[], samples: number): Verdict {
  const skewed = tiers.filter((t) => t.skewed).sort((a, b) => a.tier - b.tier || a.p_value - b.p_value || b.skew - a.skew);
  if (skewed.length) return { balanced: false, tier: skewed[0].tier, node: skewed[0].chooser, samples, confident: true };
  const confident = tiers.length > 0 && tiers.every((t) => t.confident);
  return { balanced: true, tier: null, node: null, samples, confident };
}

/** P(X >= x) for a chi-square variable with k degrees of freedom: the regularized upper incomplete gamma Q(k/2, x/2). */
export function chiSquareSurvival(x: number, k: number): number {
  if (x <= 0) return 1;
  return upperGammaQ(k / 2, x / 2);
}

function upperGammaQ(a: number, x: number): number {
  if (x < a + 1) return 1 - lowerSeries(a, x);
  return upperContinuedFraction(a, x);
}

// Numerical Recipes' gser and gcf, enough for test statistics (relative error ~1e-12).
function lowerSeries(a: number, x: number): number {
  let sum = 1 / a, term = sum;
  for (let n = 1; n < 500; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * 1e-14) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
}

function upperContinuedFraction(a: number, x: number): number {
  const tiny = 1e-300;
  let b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-14) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

/** Lanczos approximation of ln Γ(z), z > 0. */
function logGamma(z: number): number {
  const g = [76.18009172947146, -86.50532032941677, 24.01409824083091, -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5];
  let y = z;
  const t = z + 5.5 - (z + 0.5) * Math.log(z + 5.5);
  let s = 1.000000000190015;
  for (const c of g) s += c / ++y;
  return -t + Math.log(2.5066282746310005 * s / z);
}

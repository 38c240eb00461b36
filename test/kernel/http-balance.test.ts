// tcplens http --balance and --probe RUN in a real gateway lab (balancer -> gw1, gw2 -> pod1..4 on
// node1, node2 over IPIP), captured inside both gateways' namespaces in one process, with real
// requests from a client node (tcplens probe: a fresh connection each, so each is balanced on its own).
//   - even tiers: N x M requests spread exactly as the lab's round robin does, verdict balanced, confident;
//   - --skew lb=70,30: tier 1 and the balancer named, shares within 0.08 of the weights; --expect lb=70,30 then says balanced;
//   - --skew gw1=70,10,10,10: tier 2 and gw1 named, gw1's shares exact (smooth weighted round robin), gw2 even;
//   - 200 probes: each id on both legs of exactly one gateway, its pod the one that answered, latencies add up;
//   - bad input: a handful of requests is never a confident verdict; an --expect that does not parse is coded.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { labDown, labUp, leftovers } from '../../src/lab/lab.js';
import { parseSkew, POD_PORT } from '../../src/lab/gateway-tier.js';
import type { LabState } from '../../src/lab/state.js';
import { cliPath, runTcplens, startTcplens } from './helpers/tcplens-cli.js';

const GATEWAYS = 2, PODS = 4;
const names: string[] = [];
after(async () => {
  for (const n of names) {
    await labDown(n).catch(() => {});
    assert.deepEqual(leftovers(n), []);
  }
});

async function up(tag: string, skew: string[] = []): Promise<LabState> {
  const name = `${tag}${process.pid % 100000}`;
  names.push(name);
  return labUp({ name, clients: 1, servers: GATEWAYS, hops: [0], ipv6: false, port: 80, toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 },
    gateways: GATEWAYS, pods: PODS, skew: parseSkew(skew, GATEWAYS, PODS) });
}

async function down(lab: LabState): Promise<void> {
  assert.equal(await labDown(lab.name), true);
  assert.deepEqual(leftovers(lab.name), []);
}

// Many small blocks: at a few hundred requests a second each 5 ms block holds a few packets, and
// 16 of them (the default count) are 80 ms of slack for a reader on 2 busy cores; 256 are 1.3 s.
const RING = ['--block-size', '64k', '--block-count', '256', '--block-timeout', '5ms'];

const nsOf = (lab: LabState, node: string) => lab.topology.nodes.find((n) => n.name === node)!.netns;

interface ProbeRow { probe: string; status: number | null; latency_ms: number | null; server: string | null; error: string | null }

/** tcplens probe from client1 to the VIP; its JSON rows (the last line is the summary). */
function probe(lab: LabState, count: number, run: string, concurrency = 4): ProbeRow[] {
  const out = execFileSync('ip', ['netns', 'exec', nsOf(lab, 'client1'), process.execPath, cliPath, 'probe', `http://${lab.topology.vip4}/`,
    '--count', String(count), '--concurrency', String(concurrency), '--run', run, '--json'], { encoding: 'utf8', timeout: 90000 });
  const rows = out.trim().split('\n').map((l) => JSON.parse(l) as ProbeRow & { summary?: unknown });
  return rows.filter((r) => !r.summary);
}

interface Backend { name: string; requests: number; share: number; expected_share: number; p50_ms: number | null; p99_ms: number | null; errors: number; added_p50_ms?: number | null; added_p99_ms?: number | null }
interface Tier { tier: 1 | 2; chooser: string; samples: number; backends: Backend[]; skew: number; cv: number; confident: boolean; skewed: boolean }
interface Summary { tiers: Tier[]; verdict: { balanced: boolean; tier: 1 | 2 | null; node: string | null; samples: number; confident: boolean }; problems?: string[] }

/** tcplens http --balance (or --probe RUN) in both gateways, while `traffic` runs; its stdout lines
 * once it has seen `want` exchanges (the live summary on stderr says how many) and was stopped. */
async function capture(lab: LabState, extra: string[], want: number, traffic: () => void): Promise<{ code: number | null; stdout: string[]; stderr: string[] }> {
  const cap = await startTcplens(['http', '--netns', nsOf(lab, 'gw1'), '--netns', nsOf(lab, 'gw2'), '--port', '80', '--port', String(POD_PORT),
    ...RING, '--every', '500ms', ...extra]);
  let stopped: Awaited<ReturnType<Running['stop']>>;
  try {
    traffic();
    // --balance refreshes "... (N samples, ...)" on stderr; --probe says nothing until exit: give the rings a moment.
    const seen = () => Math.max(0, ...cap.stderr.all.map((l) => Number(/\((\d+) samples/.exec(l)?.[1] ?? 0)));
    for (let i = 0; i < 100 && extra.includes('--balance') && seen() < want; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 600));
  } finally {
    stopped = await cap.stop();
  }
  return stopped;
}

const summaryOf = (lines: string[]): Summary => {
  assert.equal(lines.length, 1, `--balance --json prints one object: ${lines.join('\n')}`);
  return JSON.parse(lines[0]) as Summary;
};
const tier = (s: Summary, t: 1 | 2, chooser: string) => s.tiers.find((x) => x.tier === t && x.chooser === chooser)!;

test('even tiers: 400 requests over 2 gateways x 4 pods spread as round robin does; balanced, confident; the gateways\' added latency', { timeout: 240000 }, async (t) => {
  const lab = await up('hb');
  const gw = (k: number) => nsOf(lab, `gw${k}`);
  let rows: ProbeRow[] = [];
  const res = await capture(lab, ['--balance', '--json'], 800, () => { rows = probe(lab, 400, 'even'); });
  assert.equal(res.code, 0, res.stderr.join('\n'));
  assert.ok(rows.every((r) => r.status === 200), 'every request answered');
  const s = summaryOf(res.stdout);
  const capSummary = res.stderr.find((l) => l.startsWith('tcplens http: summary'));
  assert.deepEqual(s.verdict, { balanced: true, tier: null, node: null, samples: 800, confident: true }, `${capSummary}\n${res.stdout[0]}`);
  const lb = tier(s, 1, 'lb');
  assert.deepEqual(lb.backends.map((b) => [b.name, b.requests, b.share, b.expected_share, b.errors]), [[gw(1), 200, 0.5, 0.5, 0], [gw(2), 200, 0.5, 0.5, 0]]);
  const pods = lab.topology.gatewayTier!.pods.map((p) => `${p.ip}:${POD_PORT}`).sort();
  for (const k of [1, 2]) {
    const t2 = tier(s, 2, gw(k));
    assert.deepEqual(t2.backends.map((b) => [b.name, b.requests, b.share]), pods.map((p) => [p, 50, 0.25]), `${gw(k)} spreads round robin over the 4 pods`);
    assert.equal(t2.skew, 1);
    assert.equal(t2.cv, 0);
    // The gateway's own latency: each request's two legs joined; positive, less than the whole.
    const b = lb.backends.find((x) => x.name === gw(k))!;
    assert.ok(b.added_p50_ms !== null && b.added_p50_ms !== undefined && b.added_p50_ms > 0 && b.added_p50_ms < b.p50_ms!, `${gw(k)} added p50 ${b.added_p50_ms} < its p50 ${b.p50_ms}`);
    assert.ok(b.added_p99_ms! >= b.added_p50_ms!);
  }
  assert.match(res.stderr.join('\n'), /verdict: balanced/, 'the live summary refreshed on stderr');

  await t.test('200 probes: each id on both legs of exactly one gateway, with the pod that answered; latencies add up', { timeout: 120000 }, async () => {
    let sent: ProbeRow[] = [];
    const p = await capture(lab, ['--probe', 'hops', '--json'], 400, () => { sent = probe(lab, 200, 'hops'); });
    assert.equal(p.code, 0, p.stderr.join('\n'));
    assert.equal(sent.length, 200);
    const out = p.stdout.map((l) => JSON.parse(l) as Record<string, unknown>);
    const dist = out.pop()!.distribution as { probes: number; gateways: Record<string, number>; pods: Record<string, number> };
    const paths = out as unknown as { probe: string; gateway: string; pod: string; latency_ms: number; pod_ms: number; gateway_ms: number; hops: { point: string; leg: string; server: string }[] }[];
    const summary = p.stderr.find((l) => l.startsWith('tcplens http: summary'));
    assert.deepEqual(paths.map((x) => x.probe), sent.map((r) => r.probe).sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1])), `every probe, in order (${summary})`);
    const podName = new Map(lab.topology.gatewayTier!.pods.map((x) => [`${x.ip}:${POD_PORT}`, x.node]));
    for (const x of paths) {
      const r = sent.find((y) => y.probe === x.probe)!;
      assert.equal(x.hops.length, 2, `${x.probe}: two sightings`);
      assert.deepEqual(x.hops.map((h) => [h.point, h.leg]).sort(), [[x.gateway, 'in'], [x.gateway, 'out']], `${x.probe}: both legs on one gateway`);
      assert.equal(podName.get(x.pod), r.server, `${x.probe}: the pod leg went to the pod that answered`);
      assert.ok(Math.abs(x.gateway_ms + x.pod_ms - x.latency_ms) < 0.002, `${x.probe}: gateway ${x.gateway_ms} + pod ${x.pod_ms} = ${x.latency_ms}`);
      assert.ok(x.pod_ms > 0 && x.latency_ms <= r.latency_ms!, `${x.probe}: the gateway's view ${x.latency_ms} within the client's ${r.latency_ms}`);
    }
    assert.equal(dist.probes, 200);
    assert.deepEqual(dist.gateways, { [gw(1)]: 100, [gw(2)]: 100 });
    assert.deepEqual(Object.values(dist.pods).sort(), [50, 50, 50, 50]);
  });

  await t.test('too few samples: never a confident verdict; an --expect that does not parse is a coded error', { timeout: 60000 }, async () => {
    const few = await capture(lab, ['--balance', '--json'], 12, () => { probe(lab, 6, 'few', 1); });
    const s2 = summaryOf(few.stdout);
    assert.equal(s2.verdict.samples, 12);
    assert.equal(s2.verdict.confident, false);
    assert.equal(s2.verdict.tier, null);
    for (const bad of ['lb=70;30', 'lb=', 'lb=0,0']) {
      const r = await runTcplens(['http', '--netns', gw(1), '--balance', '--expect', bad]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /TCPLENS_ERR_BAD_FLAG: --expect .*\n *hint: /);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    }
  });
  await down(lab);
});

test('--skew lb=70,30: tier 1 and the balancer named, shares within 0.08 of 70/30; with --expect lb=70,30 it is balanced', { timeout: 240000 }, async () => {
  const lab = await up('hl', ['lb=70,30']);
  const gw = (k: number) => nsOf(lab, `gw${k}`);
  const withExpect = await startTcplens(['http', '--netns', gw(1), '--netns', gw(2), '--port', '80', '--port', String(POD_PORT), ...RING,
    '--balance', '--json', '--expect', 'lb=70,30']);
  let expected: Awaited<ReturnType<Running['stop']>> | null = null;
  let res: Awaited<ReturnType<typeof capture>> | null = null;
  try {
    res = await capture(lab, ['--balance', '--json'], 800, () => { probe(lab, 400, 'lb'); });
  } finally {
    expected = await withExpect.stop();
  }
  const s = summaryOf(res.stdout);
  assert.deepEqual([s.verdict.balanced, s.verdict.tier, s.verdict.node, s.verdict.confident], [false, 1, 'lb', true], res.stdout[0]);
  // Two captures at once on 2 cores: a last exchange can still be open at the stop (then incomplete).
  assert.ok(s.verdict.samples >= 790, `${s.verdict.samples} of 800 exchanges`);
  const lb = tier(s, 1, 'lb');
  assert.ok(Math.abs(lb.backends[0].share - 0.7) < 0.08 && Math.abs(lb.backends[1].share - 0.3) < 0.08, `shares ${lb.backends.map((b) => b.share)}`);
  assert.ok(s.tiers.filter((x) => x.tier === 2).every((x) => !x.skewed), 'the gateways themselves are fair');
  const e = summaryOf(expected.stdout);
  assert.equal(expected.code, 0, expected.stderr.join('\n'));
  assert.deepEqual([e.verdict.balanced, e.verdict.tier, e.verdict.confident], [true, null, true], 'the configured weights are what it should do');
  assert.deepEqual(tier(e, 1, 'lb').backends.map((b) => b.expected_share), [0.7, 0.3]);
  await down(lab);
});

test('--skew gw1=70,10,10,10: tier 2 and gw1 named; gw1 spreads 70/10/10/10 exactly, gw2 evenly', { timeout: 240000 }, async () => {
  const lab = await up('hg', ['gw1=70,10,10,10']);
  const gw = (k: number) => nsOf(lab, `gw${k}`);
  const res = await capture(lab, ['--balance', '--json'], 800, () => { probe(lab, 400, 'gw'); });
  const s = summaryOf(res.stdout);
  assert.deepEqual([s.verdict.balanced, s.verdict.tier, s.verdict.node, s.verdict.confident], [false, 2, gw(1), true], res.stdout[0]);
  assert.ok(!tier(s, 1, 'lb').skewed, 'the balancer is fair');
  const pods = lab.topology.gatewayTier!.pods;
  const share = (k: number, pod: string) => tier(s, 2, gw(k)).backends.find((b) => b.name === `${pods.find((p) => p.node === pod)!.ip}:${POD_PORT}`)!.share;
  assert.deepEqual(['pod1', 'pod2', 'pod3', 'pod4'].map((p) => share(1, p)), [0.7, 0.1, 0.1, 0.1]);
  assert.deepEqual(['pod1', 'pod2', 'pod3', 'pod4'].map((p) => share(2, p)), [0.25, 0.25, 0.25, 0.25]);
  await down(lab);
});

type Running = Awaited<ReturnType<typeof startTcplens>>;

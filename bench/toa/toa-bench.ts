// Benchmark: connections per second of an unmodified server (node, reads remoteAddress, i.e.
// accept() + getpeername()) behind a TOA-writing "balancer", with the toa programs attached vs
// not, in one run, and the programs' per-run cost from the kernel's BPF statistics.
//
// This machine is shared and its speed drifts by tens of percent within seconds, so one load runs
// without a break while toa is switched on and off every slice (off on on off off on ...); each
// slice's rate comes from the load's own progress reports, and each "on" slice is compared with
// its neighbour. The toa object is loaded once, with the configuration `tcplens toa enable` would
// give it, and switching is attaching or detaching its three links. Every connection carries a
// TOA in both kinds of slice; only toa differs.
// The kernel's BPF statistics cost time of their own (clock reads around every run), so the rate
// is measured with them off; a second, short load with toa on and statistics on gives the
// per-run cost, and a third puts do-nothing programs on the same hooks (noop.bpf.c): the floor
// any program pays there, included in toa's figures.
// Run as root: node dist/bench/toa/toa-bench.js [slice-seconds] [slice-pairs] [aa]
// ("aa" attaches nothing in the "on" slices: the ratio the noise alone gives, expected 1.00.)
import '../stdout-closed.js';
import { bpf, c } from '../../src/kernel/libbpf.js';
import { objectPath, repoRoot } from '../../src/kernel/paths.js';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { readCounters } from '../../src/kernel/counters.js';
import { TOA_OBJECT } from '../../src/capabilities/toa/toa.js';
import { toaTablesRodata } from '../../src/capabilities/shared/toa-tables.js';
import { PROGRAMS } from '../../src/capabilities/toa/pinned.js';
import { parseAddr, parseCidr } from '../../src/net/addr.js';
import { DEFAULT_DIALECTS, encodeToa } from '../../src/net/toa.js';
import { Lines, NetPair } from '../../test/kernel/helpers/netns.js';

const slice = Number(process.argv[2] ?? 0.5) * 1000;
const pairs = Number(process.argv[3] ?? 30);
const aa = process.argv[4] === 'aa';
const PORT = 9100, CONCURRENCY = 64, REPORT_MS = 50, SETTLE_MS = 100;
const CLAIM = { addr: '198.51.100.1', port: 4321 };
const js = (p: string) => `${repoRoot}/dist/${p}.js`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

interface Progress { t: number; done: number }
interface Summary { done: number; failed: number; seen: Record<string, number> }

const pair = new NetPair('tb');
const writer = BpfObject.open(objectPath('test/kernel/fixtures/toa-writer'));
const toa = BpfObject.open(objectPath(TOA_OBJECT));
let statsFd = -1;
try {
  // The "balancer": every connection from the client side carries a TOA (on the handshake ACK).
  writer.setRodata({ write_on: 2 });
  writer.load();
  writer.attachCgroup('toa_writer', pair.client.cgroup);
  const opt = encodeToa(254, 4, parseAddr(CLAIM.addr)!.bytes, CLAIM.port);
  writer.map('fallback').update(Buffer.alloc(4), writer.struct('toa_writer_opt').encode({ bytes: opt, len: opt.length }));
  toa.setRodata({ ...toaTablesRodata(toa, { trusted: [parseCidr(`${pair.client.ip4}/32`)], dialects: [...DEFAULT_DIALECTS] }), save_syn: 1 });
  toa.load();

  const server = pair.spawnIn(pair.server, [process.execPath, js('test/kernel/helpers/tcp-server'), '::', String(PORT)]);
  await new Lines(server, 'stdout').wait(/listening/);
  const load = (seconds: number, reportMs = 0) => pair.spawnIn(pair.client,
    [process.execPath, js('bench/toa/toa-load'), pair.server.ip4, String(PORT), String(seconds), String(CONCURRENCY), String(reportMs)]);
  const finish = async (p: ReturnType<typeof load>, out: Lines) => {
    await new Promise((r) => p.once('exit', r));
    return JSON.parse(out.all[out.all.length - 1]) as Summary;
  };

  const warm = load(1);
  await finish(warm, new Lines(warm, 'stdout'));

  const order = Array.from({ length: pairs }, (_, i) => (i % 2 ? [true, false] : [false, true])).flat();
  const runner = load((order.length * slice) / 1000 + 2, REPORT_MS);
  const out = new Lines(runner, 'stdout');
  await out.wait(/"t"/);
  const slices: { on: boolean; from: number; to: number }[] = [];
  for (const on of order) {
    if (on && !aa) for (const p of PROGRAMS) toa.attachCgroup(p, pair.server.cgroup);
    const from = Date.now();
    await sleep(slice);
    slices.push({ on, from, to: Date.now() });
    toa.detachAll();
  }
  const summary = await finish(runner, out);
  const progress = out.all.filter((l) => l.startsWith('{"t"')).map((l) => JSON.parse(l) as Progress);
  const rate = (s: { from: number; to: number }) => {
    const inside = progress.filter((p) => p.t >= s.from + SETTLE_MS && p.t <= s.to);
    const [a, b] = [inside[0], inside[inside.length - 1]];
    return a && b && b.t > a.t ? ((b.done - a.done) * 1000) / (b.t - a.t) : NaN;
  };
  const rates = slices.map((s) => ({ ...s, rate: rate(s) }));

  // Cost: toa on, BPF_STATS_RUN_TIME on (while statsFd is open).
  const seenBefore = readCounters<'connections'>(toa, 'toa_counters').connections;
  statsFd = bpf.enable_stats(0) as number;
  for (const p of PROGRAMS) toa.attachCgroup(p, pair.server.cgroup);
  const costRun = load(2);
  const costSummary = await finish(costRun, new Lines(costRun, 'stdout'));
  toa.detachAll();
  const runs = Object.fromEntries(PROGRAMS.map((p) => {
    const st = toa.runStats(p);
    return [p, { cnt: st.runCnt, ns: st.runTimeNs }];
  }));
  const connections = readCounters<'connections'>(toa, 'toa_counters').connections - seenBefore;

  // Reference: do-nothing programs on the same hooks, toa off.
  const noop = BpfObject.open(objectPath('bench/toa/noop'));
  const floor: Record<string, number> = {};
  try {
    noop.load();
    noop.attachCgroup('noop_sockops', pair.server.cgroup);
    noop.attachCgroup('noop_getpeername6', pair.server.cgroup);
    const ref = load(1);
    await finish(ref, new Lines(ref, 'stdout'));
    for (const p of ['noop_sockops', 'noop_getpeername6']) {
      const st = noop.runStats(p);
      floor[p] = st.runTimeNs / Math.max(1, st.runCnt);
    }
  } finally {
    noop.close();
  }
  server.kill('SIGKILL');

  const balancer = `::ffff:${pair.client.ip4}`, client = `::ffff:${CLAIM.addr}`;
  const seen: Record<string, number> = {};
  for (const sm of [summary, costSummary]) for (const [a, k] of Object.entries(sm.seen)) seen[a] = (seen[a] ?? 0) + k;
  const strangers = Object.entries(seen).filter(([a]) => a !== balancer && a !== client);
  const offRates = rates.filter((x) => !x.on).map((x) => x.rate), onRates = rates.filter((x) => x.on).map((x) => x.rate);
  const pairRatios = Array.from({ length: pairs }, (_, i) => {
    const [x, y] = [rates[2 * i], rates[2 * i + 1]];
    return (x.on ? x.rate : y.rate) / (x.on ? y.rate : x.rate);
  }).filter((r) => Number.isFinite(r));
  console.log(`tcplens toa bench: one ${(order.length * slice) / 1000}s load, ${CONCURRENCY} concurrent connections, a TOA on every one; ` +
    `toa switched every ${slice / 1000}s${aa ? ' (A/A: nothing attached in "on" slices)' : ''}; BPF statistics off`);
  console.log(`slices (conn/s)  off: ${offRates.map((r) => r.toFixed(0)).join(' ')}`);
  console.log(`                 on:  ${onRates.map((r) => r.toFixed(0)).join(' ')}`);
  console.log(`replies: ${summary.done + costSummary.done} (${summary.failed + costSummary.failed} failed): ${seen[client] ?? 0} named the real client, ` +
    `${seen[balancer] ?? 0} the balancer, ${strangers.reduce((n, [, k]) => n + k, 0)} anything else`);
  let totalNs = 0;
  const floorOf: Record<string, string> = { toa_sockops: 'noop_sockops', toa_getpeername6: 'noop_getpeername6' };
  console.log('cost (2s load, toa on, BPF statistics on)');
  console.log('program            runs      ns/run  (do-nothing program on the same hook)');
  for (const [name, r] of Object.entries(runs)) {
    totalNs += r.ns;
    const f = floor[floorOf[name]];
    console.log(`${name.padEnd(17)} ${String(r.cnt).padStart(8)}  ${(r.ns / Math.max(1, r.cnt)).toFixed(0).padStart(6)}${f !== undefined ? `  (${f.toFixed(0)})` : ''}`);
  }
  const ratio = median(pairRatios);
  console.log(`anchor (toa off) median ${median(offRates).toFixed(0)} conn/s, toa on median ${median(onRates).toFixed(0)} conn/s; ` +
    `pair ratios ${pairRatios.map((r) => r.toFixed(2)).join(' ')}`);
  console.log(`RESULT toa: rate ratio on/off = ${ratio.toFixed(3)} (median of ${pairRatios.length} adjacent pairs; goal >= 0.95), ` +
    `kernel ns per connection (all toa programs) = ${(totalNs / Math.max(1, connections)).toFixed(0)}, wrong addresses = ${strangers.length}`);
  process.exitCode = strangers.length || !seen[client] ? 1 : 0;
} finally {
  if (statsFd >= 0) c.close(statsFd);
  writer.close();
  toa.close();
  pair.dispose();
}

// Benchmark: connections per second accepted by a server in a namespace, driven from another
// namespace, with `tcplens accept --merge-window 0` running vs not (interleaved rounds, same run),
// plus the in-kernel cost per connection from the kernel's BPF run-time statistics.
// Run as root: node dist/bench/accept/accept-rate.js [seconds-per-round] [rounds]
import '../stdout-closed.js';
import { execFileSync } from 'node:child_process';
import { bpf, c } from '../../src/kernel/libbpf.js';
import { repoRoot } from '../../src/kernel/paths.js';
import { NetPair } from '../../test/kernel/helpers/netns.js';
import { startTcplens } from '../../test/kernel/helpers/tcplens-cli.js';

const secs = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 3);
const PORT = 8080;
const js = (p: string) => `${repoRoot}/dist/${p}.js`;

interface ProgStat { name: string; run_cnt?: number; run_time_ns?: number }
const progStats = (): ProgStat[] => JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' })) as ProgStat[];

const pair = new NetPair('bench');
const statsFd = bpf.enable_stats(0) as number; // BPF_STATS_RUN_TIME while this fd is open
try {
  const server = pair.spawnIn(pair.server, [process.execPath, js('test/kernel/helpers/tcp-server'), '::', String(PORT)]);
  await new Promise((r) => server.stdout!.once('data', r));
  const load = async () => JSON.parse(await pair.run(pair.client,
    [process.execPath, js('bench/accept/conn-load'), pair.server.ip4, String(PORT), String(secs), '32'], 60000)) as { done: number };

  await load(); // warm-up
  const off: number[] = [], on: number[] = [];
  let events = 0, connections = 0, lost = 0;
  let kernelNs = 0, runs: Record<string, { cnt: number; ns: number }> = {};
  for (let i = 0; i < rounds; i++) {
    off.push((await load()).done / secs);
    const t = await startTcplens(['accept', '--json', '--merge-window', '0', '--cgroup', pair.server.cgroup], undefined, true);
    const before = progStats();
    const n = (await load()).done;
    const after = progStats();
    const r = await t.stop();
    on.push(n / secs);
    connections += n;
    const summary = r.stderr.find((l) => l.startsWith('tcplens accept:')) ?? '';
    events += Number(/in (\d+) events/.exec(summary)?.[1] ?? 0);
    lost += Number(/(\d+) lost/.exec(summary)?.[1] ?? 0);
    for (const name of ['accept_sockops']) {
      const a = after.find((p) => p.name === name);
      const b = before.find((p) => p.name === name);
      if (!a) continue;
      const cnt = (a.run_cnt ?? 0) - (b?.run_cnt ?? 0), ns = (a.run_time_ns ?? 0) - (b?.run_time_ns ?? 0);
      runs[name] = { cnt: (runs[name]?.cnt ?? 0) + cnt, ns: (runs[name]?.ns ?? 0) + ns };
      kernelNs += ns;
    }
  }
  server.kill('SIGKILL');
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log('round  without tcplens  with tcplens   (connections/s)');
  off.forEach((o, i) => console.log(`${String(i + 1).padEnd(6)} ${o.toFixed(0).padStart(15)}  ${on[i].toFixed(0).padStart(12)}`));
  for (const [name, r] of Object.entries(runs)) console.log(`${name}: ${r.cnt} runs, ${(r.ns / Math.max(1, r.cnt)).toFixed(0)} ns per run`);
  const perConn = kernelNs / Math.max(1, connections);
  console.log(`events ${events} for ${connections} connections (window 0: one event each), lost ${lost}`);
  console.log(`in-kernel cost per accepted connection (all tcplens programs): ${perConn.toFixed(0)} ns (goal < 500)`);
  console.log(`RESULT accept: rate ratio with/without = ${(median(on) / median(off)).toFixed(3)} (goal >= 0.97), ` +
    `kernel ns/connection = ${perConn.toFixed(0)}, lost = ${lost}, missing events = ${connections - events}`);
} finally {
  c.close(statsFd);
  pair.dispose();
}

// tcplens accel: does it pay on this host? Round trip (p50, p99) and bulk throughput over one
// loopback connection, plain vs accelerated, in the same run: rounds alternate plain and accel
// (each in its own throwaway cgroup, accel enabled on one only) and the medians are compared.
// The peer is C (accel-peer.c, compiled into build/ when missing or older than its source):
// blocking syscalls only, so what differs is the kernel's path and not a runtime's overhead.
// Where a round trip's time goes: the "spin" row reads without sleeping (server and client on two
// CPUs), so it has no wake-ups; the floor line is what any transport pays here with the same
// blocking pattern (one syscall; a 1-byte round trip over two pipes, no TCP at all).
// Then a short accel run with the kernel's BPF statistics on gives what the programs cost.
//
// Needs root. Usage: node dist/bench/accel/accel-bench.js [rounds] [cpus] [aa]
//   cpus  "s,c": server on CPU s, client on CPU c (default 0,0: one CPU, so a wake-up is a
//         context switch rather than a cross-CPU interrupt, the steadiest figure on a shared VM);
//         "-": wherever the scheduler puts them
//   aa    enable accel on neither cgroup: the ratios the noise alone gives (expected 1.00)
import '../stdout-closed.js';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { disableAccel, enableAccel } from '../../src/capabilities/accel/accel.js';
import { accelStatus } from '../../src/capabilities/accel/status.js';
import { createCgroup } from '../../src/kernel/cgroup.js';
import { bpf } from '../../src/kernel/libbpf.js';
import { closeFd } from '../../src/kernel/pins.js';
import { repoRoot } from '../../src/kernel/paths.js';

const rounds = Number(process.argv[2] ?? 7);
const cpus = process.argv[3] ?? '0,0';
const aa = process.argv[4] === 'aa';
const source = join(repoRoot, 'bench', 'accel', 'accel-peer.c');
const peer = join(repoRoot, 'build', 'accel-peer');
const pinDir = `/sys/fs/bpf/tcplens-bench-accel-${process.pid}/accel`;

/** Compile the peer when it is missing or older than its source (cc, else clang: setup.sh installs clang). */
function ensurePeer(): void {
  if (existsSync(peer) && statSync(peer).mtimeMs >= statSync(source).mtimeMs) return;
  const cc = ['cc', 'clang'].find((c) => { try { execFileSync(c, ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } });
  if (!cc) throw new Error('no C compiler (cc or clang) to build bench/accel/accel-peer.c: run scripts/setup.sh');
  execFileSync(cc, ['-O2', '-Wall', '-o', peer, source], { stdio: 'inherit' });
}

function run(cgroup: string, args: readonly string[]): number[] {
  const out = execFileSync('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, peer, ...args], { encoding: 'utf8', timeout: 120000 });
  return out.trim().split(/\s+/).map(Number);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ratio = (plain: number, fast: number) => `${(fast / plain).toFixed(2)}x`;
const workloads = [
  { name: 'round trip 1 B', args: ['rr', '20000', '1', cpus], unit: 'us' },
  ...(availableParallelism() > 1 ? [{ name: 'round trip 1 B spin', args: ['rr', '20000', '1', '0,1', 'spin'], unit: 'us' }] : []),
  { name: 'round trip 16 KiB', args: ['rr', '5000', '16384', cpus], unit: 'us' },
  { name: 'bulk 64 KiB writes', args: ['bulk', String(2 * 2 ** 30), '65536', cpus], unit: 'MB/s' },
  { name: 'bulk 16 KiB writes', args: ['bulk', String(2 ** 30), '16384', cpus], unit: 'MB/s' },
  { name: 'bulk 1 KiB writes', args: ['bulk', String(128 * 2 ** 20), '1024', cpus], unit: 'MB/s' },
];

ensurePeer();
const plainCg = createCgroup(`tcplens-bench-accel-plain-${process.pid}`);
const accelCg = createCgroup(`tcplens-bench-accel-fast-${process.pid}`);
try {
  // aa: attached, but to port 1 only, so nothing is redirected
  enableAccel({ cgroup: accelCg.path, ports: aa ? [1] : [] }, pinDir);
  let sentByAccel = 0;
  process.stdout.write(`accel bench: C peers on one loopback connection, CPUs ${cpus}, medians of ${rounds} alternating rounds${aa ? ' (aa: accel on neither side)' : ''}\n`);
  for (const w of workloads) {
    const plain: number[][] = [], fast: number[][] = [];
    for (let i = 0; i < rounds; i++) {
      plain.push(run(plainCg.path, w.args));
      fast.push(run(accelCg.path, w.args));
      sentByAccel += w.unit === 'us' ? 2 * Number(w.args[1]) * Number(w.args[2]) : Math.ceil(Number(w.args[1]) / Number(w.args[2])) * Number(w.args[2]) + 1;
    }
    let row: string;
    if (w.unit === 'us') {
      const [p50, p99] = [0, 1].map((k) => [median(plain.map((r) => r[k])), median(fast.map((r) => r[k]))]);
      row = `p50 plain ${p50[0].toFixed(1)} us, accel ${p50[1].toFixed(1)} us (${ratio(p50[0], p50[1])}); ` +
        `p99 plain ${p99[0].toFixed(1)} us, accel ${p99[1].toFixed(1)} us (${ratio(p99[0], p99[1])})`;
    } else {
      const [a, b] = [median(plain.map((r) => r[0])), median(fast.map((r) => r[0]))];
      row = `plain ${a.toFixed(0)} MB/s, accel ${b.toFixed(0)} MB/s (${ratio(a, b)})`;
    }
    process.stdout.write(`${w.name.padEnd(20)} ${row}\n`);
  }
  const floor = Array.from({ length: rounds }, () => run(plainCg.path, ['floor', '20000', cpus]));
  process.stdout.write(`floor (no TCP): one syscall ${median(floor.map((f) => f[0]))} ns; a pipe round trip between the two processes ` +
    `${median(floor.map((f) => f[1])).toFixed(1)} us\n`);
  const c = accelStatus(pinDir).counters!;
  process.stdout.write(`accel counters: redirected ${c.redirected_bytes} of the ${sentByAccel} bytes the accel side sent (${c.redirected_msgs} msgs), ` +
    `passed ${c.passed_bytes}, no peer ${c.no_peer_bytes}\n`);
  // The programs' own cost (statistics cost clock reads of their own, so they stay off above).
  const statsFd = bpf.enable_stats(0) as number; // BPF_STATS_RUN_TIME while this fd is open
  try {
    run(accelCg.path, ['rr', '5000', '1', cpus]);
    const cost = accelStatus(pinDir).programs.map((p) => `${p.program} ${p.nsPerRun ?? '-'} ns/run (${p.runCnt} runs)`);
    process.stdout.write(`program cost (round trip 1 B, statistics on): ${cost.join(', ')}\n`);
  } finally {
    if (statsFd >= 0) closeFd(statsFd);
  }
} finally {
  disableAccel(pinDir);
  plainCg.remove();
  accelCg.remove();
}

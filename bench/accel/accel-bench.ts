// tcplens accel: does it pay on this host? Round trip (p50, p99) and bulk throughput over one
// loopback connection, plain vs accelerated, in the same run: rounds alternate plain and accel
// (each in its own throwaway cgroup, accel enabled on one only) and the medians are compared.
// Needs root. Usage: node dist/bench/accel/accel-bench.js [rounds]
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { disableAccel, enableAccel } from '../../src/capabilities/accel/accel.js';
import { accelStatus } from '../../src/capabilities/accel/status.js';
import { createCgroup } from '../../src/kernel/cgroup.js';
import { repoRoot } from '../../src/kernel/paths.js';

const rounds = Number(process.argv[2] ?? 5);
const peer = join(repoRoot, 'bench', 'accel', 'accel-peer.py');
const pinDir = `/sys/fs/bpf/tcplens-bench-accel-${process.pid}/accel`;
const plainCg = createCgroup(`tcplens-bench-accel-plain-${process.pid}`);
const accelCg = createCgroup(`tcplens-bench-accel-fast-${process.pid}`);

function run(cgroup: string, args: string[]): number[] {
  const out = execFileSync('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec python3 "$@"', cgroup, peer, ...args], { encoding: 'utf8', timeout: 120000 });
  return out.trim().split(/\s+/).map(Number);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const workloads = [
  { name: 'round trip 64 B', args: ['rr', '20000', '64'], unit: 'us' },
  { name: 'round trip 16 KiB', args: ['rr', '5000', '16384'], unit: 'us' },
  { name: 'bulk 64 KiB writes', args: ['bulk', String(2 * 2 ** 30), '65536'], unit: 'MB/s' },
  { name: 'bulk 1 KiB writes', args: ['bulk', String(256 * 2 ** 20), '1024'], unit: 'MB/s' },
];

try {
  enableAccel({ cgroup: accelCg.path, ports: [] }, pinDir);
  const rows: string[] = [];
  for (const w of workloads) {
    const plain: number[][] = [], fast: number[][] = [];
    for (let i = 0; i < rounds; i++) {
      plain.push(run(plainCg.path, w.args));
      fast.push(run(accelCg.path, w.args));
    }
    if (w.unit === 'us') {
      const [p50, p99] = [0, 1].map((k) => [median(plain.map((r) => r[k])), median(fast.map((r) => r[k]))]);
      rows.push(`${w.name.padEnd(20)} p50 plain ${p50[0].toFixed(1)} us, accel ${p50[1].toFixed(1)} us (${(p50[1] / p50[0]).toFixed(2)}x); ` +
        `p99 plain ${p99[0].toFixed(1)} us, accel ${p99[1].toFixed(1)} us (${(p99[1] / p99[0]).toFixed(2)}x)`);
    } else {
      const [a, b] = [median(plain.map((r) => r[0])), median(fast.map((r) => r[0]))];
      rows.push(`${w.name.padEnd(20)} plain ${a.toFixed(0)} MB/s, accel ${b.toFixed(0)} MB/s (${(b / a).toFixed(2)}x)`);
    }
    process.stdout.write(`${rows[rows.length - 1]}\n`);
  }
  const c = accelStatus(pinDir).counters!;
  process.stdout.write(`accel counters: redirected ${c.redirected_bytes} bytes, passed ${c.passed_bytes}, no peer ${c.no_peer_bytes} (medians of ${rounds} alternating rounds)\n`);
} finally {
  disableAccel(pinDir);
  plainCg.remove();
  accelCg.remove();
}

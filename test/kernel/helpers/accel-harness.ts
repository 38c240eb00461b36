// For the accel tests and bench: a throwaway cgroup and pin directory per test, and the traffic
// child (accel-traffic.ts) started inside that cgroup (and optionally a network namespace).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createCgroup } from '../../../src/kernel/cgroup.js';
import { repoRoot } from '../../../src/kernel/paths.js';
import { disableAccel } from '../../../src/capabilities/accel/accel.js';
import type { TrafficPlan, TrafficResult } from './accel-traffic.js';

let serial = 0;
const trafficScript = join(repoRoot, 'dist', 'test', 'kernel', 'helpers', 'accel-traffic.js');

export interface AccelHarness { cgroup: string; pinDir: string; dispose(): void }

/** A cgroup and a pin dir unique to this test; dispose() disables and removes both. */
export function accelHarness(tag: string): AccelHarness {
  const id = `${process.pid}-${tag}-${serial++}`;
  const cg = createCgroup(`tcplens-test-accel-${id}`);
  const pinDir = `/sys/fs/bpf/tcplens-test-accel-${id}/accel`;
  return {
    cgroup: cg.path, pinDir,
    dispose: () => {
      try { disableAccel(pinDir); } finally { cg.remove(); }
    },
  };
}

export interface Traffic { proc: ChildProcess; ready: Promise<void>; go(): void; result: Promise<TrafficResult> }

/** Start the traffic child in cgroup (and netns, when given). */
export function startTraffic(cgroup: string, plan: TrafficPlan, netns?: string): Traffic {
  const argv = [process.execPath, trafficScript, JSON.stringify(plan)];
  const script = netns ? 'echo $$ > "$0/cgroup.procs" && ns="$1" && shift && exec ip netns exec "$ns" "$@"' : 'echo $$ > "$0/cgroup.procs" && shift && exec "$@"';
  const proc = spawn('sh', ['-c', script, cgroup, netns ?? '-', ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => { readyResolve = r; });
  proc.stdout!.on('data', (d) => {
    out += d;
    if (/^ready$/m.test(out)) readyResolve();
  });
  proc.stderr!.on('data', (d) => { err += d; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 300_000);
  const result = once(proc, 'exit').then(([code]) => {
    clearTimeout(timer);
    const line = out.split('\n').filter((l) => l.startsWith('{')).pop();
    if (!line) throw new Error(`traffic child exited ${code} without a result: ${err}`);
    return JSON.parse(line) as TrafficResult;
  });
  return { proc, ready, go: () => proc.stdin!.write('go\n'), result };
}

export function pinsGone(h: AccelHarness): boolean {
  return !existsSync(h.pinDir) && !existsSync(join(h.pinDir, '..'));
}

// What the live benches read from /proc about the processes they measure, and how they stop them.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ: /proc/PID/stat counts CPU in 1/100 s on Linux

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK; // utime, stime (fields 14, 15)
}

/** SIGINT (tcplens and tcpdump print their summaries on it), SIGKILL after 15 s. */
export async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = once(p, 'exit');
  p.kill('SIGINT');
  const t = setTimeout(() => p.kill('SIGKILL'), 15000);
  await exited;
  clearTimeout(t);
}

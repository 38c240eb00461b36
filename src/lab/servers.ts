// The lab's real servers: one detached HTTP server per server namespace, each in its own cgroup
// (joined BEFORE `ip netns exec`, which remounts /sys) so `tcplens accept --cgroup` can watch it.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { TcplensError } from '../errors.js';
import type { ServerProcess } from './state.js';
import { throwIfStopped } from './checkpoint.js';

export const SERVER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'http-server.js');
export const PROXY_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'http-proxy.js');

/** Start one server (or a gateway's proxy: script, args); resolves once it listens (or fails with its log). */
export async function startServer(node: string, netns: string, cgroup: string, port: number, log: string,
  script = SERVER_SCRIPT, args: string[] = []): Promise<ServerProcess> {
  mkdirSync(cgroup, { recursive: true });
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'w');
  const join = 'echo $$ > "$0/cgroup.procs" && ns="$1" && shift && exec ip netns exec "$ns" "$@"';
  const child = spawn('sh', ['-c', join, cgroup, netns, process.execPath, script, node, String(port), ...args],
    { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const pid = child.pid;
  let exited: number | null = null;
  child.on('exit', (code) => { exited = code ?? -1; });
  child.unref();
  if (!pid) throw new TcplensError('TCPLENS_ERR_LAB', `cannot start the HTTP server of ${node}`, `see ${log}`);
  for (let waited = 0; waited < 10000; waited += 20) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (text.includes('listening')) return { node, pid, cgroup, log };
    if (exited !== null) break;
    await sleep(20);
    throwIfStopped(`while starting the server of ${node}`);
  }
  const text = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-3).join('; ') : '';
  throw new TcplensError('TCPLENS_ERR_LAB', `the HTTP server of ${node} did not start${exited !== null ? ` (exit ${exited})` : ''}: ${text || 'no output'}`,
    `its log: ${log}`);
}

export function pidsIn(cgroup: string): number[] {
  try {
    return readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kill every process in a cgroup tree (cgroup.kill) and remove the cgroups, deepest first. */
export async function removeCgroupTree(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const dirs: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    dirs.push(d);
  };
  walk(root);
  try {
    writeFileSync(join(root, 'cgroup.kill'), '1');
  } catch {
    // Kernels before 5.14 have no cgroup.kill: signal each process.
    for (const d of dirs) for (const pid of pidsIn(d)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  const left: string[] = [];
  for (const d of dirs) {
    // cgroup.procs empties before dying tasks are gone; rmdir says EBUSY until they are.
    let error: Error | null = null;
    for (let waited = 0; waited < 5000; waited += 10) {
      try {
        rmdirSync(d);
        error = null;
        break;
      } catch (e) {
        error = e as Error;
        if ((e as NodeJS.ErrnoException).code !== 'EBUSY') break;
        await sleep(10);
      }
    }
    if (error && (error as NodeJS.ErrnoException).code !== 'ENOENT') left.push(`${d} (${error.message})`);
  }
  return left;
}

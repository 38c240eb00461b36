// Where a lab keeps what it made, so down/status/exec work from any later process. Everything a
// lab makes is named after it, so `down` can also find leftovers when the state file is gone.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Mount } from '../kernel/cgroup.js';
import { TcplensError } from '../errors.js';
import { LIMITS, type Topology } from './topology.js';

export const STATE_DIR = '/run/tcplens';
export const PIN_ROOT = '/sys/fs/bpf/tcplens';

export interface ServerProcess { node: string; pid: number; cgroup: string; log: string }
export interface TcAttachmentRecord { node: string; dev: string; progId: number }

export interface LabState {
  name: string;
  phase: 'building' | 'up';
  createdAt: string;
  topology: Topology;
  cgroup: string;
  pinDir: string;
  servers: ServerProcess[];
  tc: TcAttachmentRecord[];
}

export function statePath(name: string): string {
  return join(STATE_DIR, `lab-${name}.json`);
}

/** Server logs and other files of a running lab. */
export function runDir(name: string): string {
  return join(STATE_DIR, `lab-${name}`);
}

export function pinDir(name: string): string {
  return join(PIN_ROOT, `lab-${name}`);
}

export function labCgroup(name: string): string {
  return join(cgroup2Mount(), `tcplens-lab-${name}`);
}

export function serverCgroup(name: string, k: number): string {
  return join(labCgroup(name), `server-${k}`);
}

export function readState(name: string): LabState | null {
  try {
    return JSON.parse(readFileSync(statePath(name), 'utf8')) as LabState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TcplensError('TCPLENS_ERR_LAB', `the state file ${statePath(name)} is unreadable: ${(e as Error).message}`,
      `remove the lab with: tcplens lab down --name ${name}`);
  }
}

export function writeState(s: LabState): void {
  mkdirSync(STATE_DIR, { recursive: true });
  // Write then rename: a reader never sees half a file.
  const tmp = `${statePath(s.name)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, statePath(s.name));
}

/** Names of labs with a state file. */
export function listLabs(): string[] {
  if (!existsSync(STATE_DIR)) return [];
  return readdirSync(STATE_DIR).map((f) => /^lab-(.+)\.json$/.exec(f)?.[1]).filter((n): n is string => !!n).sort();
}

/** The lowest address index no other lab uses (labs are isolated anyway; distinct addresses read better). */
export function freeIndex(): number {
  const used = new Set<number>();
  for (const n of listLabs()) {
    try {
      const s = readState(n);
      if (s) used.add(s.topology.options.index);
    } catch { /* an unreadable state holds no index */ }
  }
  for (let i = 1; i <= LIMITS.index; i++) if (!used.has(i)) return i;
  throw new TcplensError('TCPLENS_ERR_LAB', `all ${LIMITS.index} lab address blocks are in use`, 'take some labs down: tcplens lab status');
}

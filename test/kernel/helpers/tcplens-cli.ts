// Runs the real tcplens CLI as a child process, as a user would.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { once } from 'node:events';
import { join } from 'node:path';
import { repoRoot } from '../../../src/kernel/paths.js';
import { Lines } from './netns.js';

export const cliPath = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export interface Running { proc: ChildProcess; stdout: Lines; stderr: Lines; stop(signal?: NodeJS.Signals): Promise<{ code: number | null; stdout: string[]; stderr: string[] }> }

/** Start tcplens and wait until it has attached. `discardStdout` sends its records to /dev/null
 * (benchmarks: reading them here would cost more than tcplens itself); `netns` runs it inside that
 * named namespace (`ip netns exec`). */
export async function startTcplens(args: string[], ready = /tcplens: attached/, discardStdout = false, netns?: string): Promise<Running> {
  const argv = [process.execPath, cliPath, ...args];
  const [cmd, ...rest] = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
  const proc = spawn(cmd, rest, { stdio: ['ignore', discardStdout ? 'ignore' : 'pipe', 'pipe'] });
  const stdout = new Lines(proc, discardStdout ? null : 'stdout');
  const stderr = new Lines(proc, 'stderr');
  await stderr.wait(ready, 20000);
  return {
    proc, stdout, stderr,
    stop: async (signal: NodeJS.Signals = 'SIGINT') => {
      if (proc.exitCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
      const [code] = proc.exitCode === null ? await once(proc, 'exit') : [proc.exitCode];
      clearTimeout(timer);
      // 'exit' can come before the last lines are read from the pipes: wait for both to end.
      for (let i = 0; i < 200 && !(stdout.done && stderr.done); i++) await new Promise((r) => setTimeout(r, 10));
      return { code, stdout: stdout.all, stderr: stderr.all };
    },
  };
}

/** Run tcplens to completion; exit code and output. */
export async function runTcplens(args: string[], opts: { uid?: number; cli?: string; netns?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const argv = [process.execPath, opts.cli ?? cliPath, ...args];
  // netns: run it inside that network namespace, as `ip netns exec NS tcplens ...` would.
  const [cmd, ...rest] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  const proc = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'], uid: opts.uid, gid: opts.uid });
  let stdout = '', stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
  const [code] = await once(proc, 'exit');
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A copy of the CLI an unprivileged user can run (for not-root tests): the checkout itself when
 * it is readable by everyone, else a world-readable copy (CI clones into private directories).
 * dispose() removes the copy. */
export function cliForAnyone(): { cli: string; dispose(): void } {
  const readable = (p: string): boolean => {
    for (let d = p; d !== '/'; d = dirname(d)) if (!(statSync(d).mode & 0o005)) return false;
    return true;
  };
  if (readable(cliPath)) return { cli: cliPath, dispose: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-anyone-'));
  chmodSync(dir, 0o755);
  for (const part of ['dist', 'node_modules', 'package.json', 'build']) cpSync(join(repoRoot, part), join(dir, part), { recursive: true });
  return { cli: join(dir, 'dist', 'src', 'cli', 'main.js'), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

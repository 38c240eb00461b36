// Ctrl-C (or SIGTERM) at any moment of `tcplens lab demo` or `tcplens lab up` leaves nothing
// behind that the command made for itself: namespaces, the lab cgroup and its servers, pins, the
// state file, TC filters (they go with the balancer's namespace) and the demo's accept tracer.
// Each case runs the real CLI, signals it right after it logs a phase, and then looks.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { labDown, leftovers } from '../../src/lab/lab.js';
import { labCgroup, pinDir, readState, runDir, statePath } from '../../src/lab/state.js';
import { listNetns } from '../../src/lab/netns.js';
import { cliPath } from './helpers/tcplens-cli.js';

const names: string[] = [];
let serial = 0;
const labName = () => { const n = `i${process.pid % 100000}${serial++}`; names.push(n); return n; };

after(async () => {
  for (const n of names) for (const lab of [n, `${n}-gw`]) await labDown(lab).catch(() => {});
});

function acceptPrograms(): number[] {
  const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' })) as { id: number; name?: string }[];
  return progs.filter((p) => p.name === 'accept_sockops').map((p) => p.id);
}

/** Processes still in the lab's cgroup, or still naming one of its namespaces. A killed server
 * waits as a zombie until init reaps it (its parent, the CLI, has exited): it runs nothing. */
function labProcesses(name: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (/^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) continue;
      const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cg.includes(`tcplens-lab-${name}/`) || cg.includes(`tcplens-lab-${name}\n`) || cmd.includes(`tl-${name}-`)) found.push(`${pid}: ${cmd}`);
    } catch { /* exited meanwhile */ }
  }
  return found;
}

function running(pid: number): boolean {
  try {
    return !/^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

interface Interrupted { code: number | null; signal: string | null; stderr: string; stdout: string; exitMs: number; serverPids: number[] }

/**
 * Run `tcplens lab <args>`, send `signals` (one after another, `gapMs` apart) once stderr shows a
 * line matching `at` (after `delayMs`), and wait for the exit.
 */
async function interrupt(args: string[], at: RegExp, signals: NodeJS.Signals[] = ['SIGINT'], opts: { delayMs?: number; gapMs?: number } = {}):
  Promise<Interrupted> {
  const name = args[args.indexOf('--name') + 1];
  const proc = spawn(process.execPath, [cliPath, 'lab', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '', stdout = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  const serverPids = new Set<number>();
  // The servers' pids, from the state file while it exists: they must all be gone at the end.
  const watch = setInterval(() => { for (const s of readState(name)?.servers ?? []) serverPids.add(s.pid); }, 20);
  const killer = setTimeout(() => proc.kill('SIGKILL'), 120_000);
  let signalledAt = 0;
  const lines = createInterface({ input: proc.stderr });
  lines.on('line', (l) => {
    stderr += `${l}\n`;
    if (signalledAt || !at.test(l)) return;
    signalledAt = -1;
    setTimeout(() => {
      signalledAt = performance.now();
      signals.forEach((s, i) => setTimeout(() => proc.kill(s), i * (opts.gapMs ?? 0)));
    }, opts.delayMs ?? 0);
  });
  const [code, signal] = await once(proc, 'exit') as [number | null, string | null];
  clearTimeout(killer);
  clearInterval(watch);
  for (const s of readState(name)?.servers ?? []) serverPids.add(s.pid);
  await new Promise((r) => setImmediate(r));
  assert.ok(signalledAt > 0, `never saw ${at} (stderr: ${stderr})`);
  return { code, signal, stderr, stdout, exitMs: performance.now() - signalledAt, serverPids: [...serverPids] };
}

function assertNothingLeft(name: string, r: Interrupted, acceptBefore: number[], code = 130): void {
  const said = `stderr:\n${r.stderr}`;
  assert.equal(r.code, code, `exit code (signal ${r.signal}); ${said}`);
  assert.ok(r.exitMs < 10_000, `exited ${Math.round(r.exitMs)} ms after the signal`);
  assert.doesNotMatch(r.stderr, /^\s+at .+\(.*:\d+:\d+\)$/m, `no stack trace; ${said}`);
  assert.match(r.stderr, /TCPLENS_ERR_INTERRUPTED/, said);
  assert.deepEqual(listNetns().filter((n) => n.startsWith(`tl-${name}-`)), [], `no namespaces; ${said}`);
  assert.ok(!existsSync(labCgroup(name)), 'no lab cgroup');
  assert.ok(!existsSync(pinDir(name)), 'no pins');
  assert.ok(!existsSync(statePath(name)) && !existsSync(runDir(name)), 'no state file, no run directory');
  assert.deepEqual(labProcesses(name), [], 'no process of the lab');
  for (const pid of r.serverPids) assert.ok(!running(pid), `server ${pid} is gone`);
  assert.deepEqual(acceptPrograms().filter((id) => !acceptBefore.includes(id)), [], 'no accept_sockops left loaded');
  assert.deepEqual(leftovers(name), []);
  assert.deepEqual(leftovers(`${name}-gw`), [], 'nothing of the demo\'s gateway lab');
}

const demoPhases: [string, RegExp, number][] = [
  ['namespaces', /^tcplens lab: namespaces: /, 0],
  ['links', /^tcplens lab: links: /, 0],
  ['TOA inserter', /^tcplens lab: TOA inserter: /, 0],
  ['servers', /^tcplens lab: servers: /, 0],
  ['tracer attached', /^tcplens lab: accept tracer: attached/, 0],
  ['requests', /^tcplens lab: requests: /, 150],
  ['gateway lab', /^tcplens lab: balance: /, 100],
];

for (const [phase, at, delayMs] of demoPhases) {
  test(`SIGINT during lab demo (${phase}) leaves nothing behind`, { timeout: 150_000 }, async () => {
    const name = labName();
    const before = acceptPrograms();
    const r = await interrupt(['demo', '--name', name], at, ['SIGINT'], { delayMs });
    assertNothingLeft(name, r, before);
  });
}

test('SIGTERM during lab demo, while its servers start, leaves nothing behind', { timeout: 150_000 }, async () => {
  const name = labName();
  const before = acceptPrograms();
  const r = await interrupt(['demo', '--name', name], /^tcplens lab: servers: /, ['SIGTERM']);
  assertNothingLeft(name, r, before, 143);
});

test('SIGINT during lab up leaves nothing behind', { timeout: 150_000 }, async () => {
  const name = labName();
  const before = acceptPrograms();
  const r = await interrupt(['up', '--name', name, '--clients', '2', '--servers', '2'], /^tcplens lab: TOA inserter: /);
  assertNothingLeft(name, r, before);
  assert.equal(r.stdout, '', 'it never said the lab was up');
});

test('more SIGINTs while the demo cleans up do not cut the cleanup short', { timeout: 150_000 }, async () => {
  const name = labName();
  const before = acceptPrograms();
  const r = await interrupt(['demo', '--name', name], /^tcplens lab: accept tracer: attached/, ['SIGINT', 'SIGINT', 'SIGINT', 'SIGINT', 'SIGINT', 'SIGINT'], { gapMs: 40 });
  assertNothingLeft(name, r, before);
});

test('lab up that has said it is up keeps its lab', { timeout: 150_000 }, async () => {
  const name = labName();
  const proc = spawn(process.execPath, [cliPath, 'lab', 'up', '--name', name, '--clients', '1', '--servers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const [code] = await once(proc, 'exit');
  assert.equal(code, 0);
  assert.ok(leftovers(name).length > 0, 'the lab is up');
  assert.equal(await labDown(name), true);
  assert.deepEqual(leftovers(name), []);
});

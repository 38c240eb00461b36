// A fresh machine may have no bpf filesystem at /sys/fs/bpf (a plain sysfs directory): the README's
// commands and the test helpers must still work there, and quickly (mkdir -p on sysfs used to spin
// forever at 100% CPU). Each case runs in a private mount namespace with /sys/fs/bpf unmounted, so
// the host's own mount is untouched; whatever tcplens mounts and pins there dies with the
// namespace.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { createCgroup } from '../../src/kernel/cgroup.js';
import { labDown } from '../../src/lab/lab.js';
import { cliPath } from './helpers/tcplens-cli.js';

const names: string[] = [];
after(async () => {
  for (const n of names) await labDown(n).catch(() => {});
});

interface Run { code: number | null; stdout: string; stderr: string; ms: number }

/** Run a shell script in a private mount namespace without a bpf filesystem; killed at timeoutMs. */
async function fresh(script: string, timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  // Unmount every bpffs stacked on /sys/fs/bpf, then prove it is plain sysfs before going on.
  const prelude = 'while umount /sys/fs/bpf 2>/dev/null; do :; done; ' +
    'test "$(stat -f -c %t /sys/fs/bpf)" != cafe4a11 || { echo "bpffs still mounted" >&2; exit 99; }; ';
  const t0 = performance.now();
  const proc = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', prelude + script],
    { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
  let stdout = '', stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  // The whole process group: a spinning node below sh must not outlive the test.
  const killer = setTimeout(() => { try { process.kill(-proc.pid!, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
  const [code] = await once(proc, 'exit') as [number | null];
  clearTimeout(killer);
  return { code, stdout, stderr, ms: performance.now() - t0 };
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const cli = (args: string[]) => [process.execPath, cliPath, ...args].map(q).join(' ');

test('lab demo works where /sys/fs/bpf is not mounted', { timeout: 120_000 }, async () => {
  const name = `f${process.pid % 100000}`;
  names.push(name);
  const r = await fresh(cli(['lab', 'demo', '--name', name]), 90_000);
  assert.equal(r.code, 0, `exit ${r.code} after ${Math.round(r.ms)} ms\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /6 of 6 server sockets saw the balancer.*real client of 6 of 6/);
  assert.match(r.stderr, /lab .* removed/);
});

test('toa enable, status and disable work where /sys/fs/bpf is not mounted', { timeout: 120_000 }, async () => {
  const cg = createCgroup(`tcplens-test-fresh-${process.pid}`);
  try {
    const env = { ...process.env, TCPLENS_TOA_PIN_DIR: `/sys/fs/bpf/tcplens/toa-fresh-${process.pid}` };
    const steps = [
      ['enable', cli(['toa', 'enable', '--trusted-lb', '192.0.2.1/32', '--cgroup', cg.path])],
      ['status', cli(['toa', 'status'])],
      ['disable', cli(['toa', 'disable'])],
    ];
    const script = steps.map(([what, cmd], i) => `echo "== ${what}"; timeout 30 ${cmd} || exit ${10 + i}`).join('; ');
    const r = await fresh(script, 90_000, env);
    assert.equal(r.code, 0, `exit ${r.code} (10 enable, 11 status, 12 disable) after ${Math.round(r.ms)} ms\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout + r.stderr, /tcplens toa: enabled on/);
    assert.match(r.stdout, /== status[\s\S]*192\.0\.2\.1\/32[\s\S]*== disable/, 'status lists the trusted balancer');
  } finally {
    cg.remove();
  }
});

test('the toa kernel tests (helpers that pin) pass where /sys/fs/bpf is not mounted', { timeout: 300_000 }, async () => {
  const file = join(repoRoot, 'dist', 'test', 'kernel', 'toa-servers.test.js');
  // A runner of its own (not a subtest of this one): without NODE_TEST_CONTEXT it prints TAP.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const argv = [process.execPath, '--test', '--test-reporter=tap', '--test-timeout=200000', file];
  const r = await fresh(`cd ${q(repoRoot)} && ${argv.map(q).join(' ')}`, 240_000, env);
  assert.equal(r.code, 0, `exit ${r.code} after ${Math.round(r.ms)} ms\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /# pass [1-9]/);
  assert.match(r.stdout, /# fail 0/);
});

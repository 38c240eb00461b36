// Bad input reaches the user as a stable code and a hint, exit code non-zero, no stack trace,
// and nothing attached. Runs the real CLI.
import test from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, chmodSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { runTcplens, cliPath } from '../kernel/helpers/tcplens-cli.js';
import { repoRoot } from '../../src/kernel/paths.js';

function assertError(r: { code: number | null; stderr: string }, code: string): void {
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`${code}:`), r.stderr);
  assert.match(r.stderr, /hint: /);
  assert.doesNotMatch(r.stderr, /^\s+at .*\(.*:\d+:\d+\)$/m, 'no stack trace');
}

const cases: [string, string[], string][] = [
  ['unknown command', ['frobnicate'], 'TCPLENS_ERR_UNKNOWN_COMMAND'],
  ['unknown flag', ['accept', '--bogus'], 'TCPLENS_ERR_UNKNOWN_FLAG'],
  ['flag without its value', ['accept', '--port'], 'TCPLENS_ERR_BAD_FLAG'],
  ['bad CIDR', ['accept', '--trusted-lb', '10.0.0.0/40'], 'TCPLENS_ERR_BAD_CIDR'],
  ['bad CIDR text', ['accept', '--trusted-lb', 'balancer-1'], 'TCPLENS_ERR_BAD_CIDR'],
  ['port out of range', ['accept', '--port', '70000'], 'TCPLENS_ERR_BAD_PORT'],
  ['port not a number', ['accept', '-p', '8o'], 'TCPLENS_ERR_BAD_PORT'],
  ['too many ports', ['accept', ...Array.from({ length: 9 }, (_, i) => ['-p', String(i + 1)]).flat()], 'TCPLENS_ERR_BAD_PORT'],
  ['bad window', ['accept', '--merge-window', '10x'], 'TCPLENS_ERR_BAD_WINDOW'],
  ['window too long', ['accept', '--merge-window', '2h'], 'TCPLENS_ERR_BAD_WINDOW'],
  ['bad TOA dialect', ['accept', '--toa', '254/9'], 'TCPLENS_ERR_BAD_TOA'],
  ['-4 with -6', ['accept', '-4', '-6'], 'TCPLENS_ERR_BAD_FLAG'],
  ['missing cgroup', ['accept', '--cgroup', 'tcplens-no-such-cgroup'], 'TCPLENS_ERR_NO_CGROUP'],
];

for (const [name, args, code] of cases) {
  test(`accept: ${name} -> ${code}`, async () => {
    assertError(await runTcplens(args), code);
  });
}

test('--help prints the flags and exits 0', async () => {
  const r = await runTcplens(['accept', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--trusted-lb CIDR/);
  assert.match(r.stdout, /--merge-window DUR/);
});

test('not root: TCPLENS_ERR_NOT_ROOT, before anything is loaded', async () => {
  // The unprivileged user must be able to read the program: run a world-readable copy if the
  // checkout itself is not (CI clones into private directories).
  let dir: string | null = null;
  let cli = cliPath;
  try {
    const readable = (p: string): boolean => { for (let d = p; d !== '/'; d = dirname(d)) if (!(statSync(d).mode & 0o005)) return false; return true; };
    if (!readable(cliPath)) {
      dir = mkdtempSync(join(tmpdir(), 'tcplens-e2e-'));
      chmodSync(dir, 0o755);
      for (const part of ['dist', 'node_modules', 'package.json']) cpSync(join(repoRoot, part), join(dir, part), { recursive: true });
      cli = join(dir, 'dist', 'src', 'cli', 'main.js');
    }
    const r = await runTcplens(['accept'], { uid: 65534, cli });
    assertError(r, 'TCPLENS_ERR_NOT_ROOT');
    assert.match(r.stderr, /sudo/);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

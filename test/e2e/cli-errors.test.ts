// Bad input reaches the user as a stable code and a hint, exit code non-zero, no stack trace,
// and nothing attached. Runs the real CLI.
import test from 'node:test';
import assert from 'node:assert/strict';
import { runTcplens, cliForAnyone } from '../kernel/helpers/tcplens-cli.js';

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
  const anyone = cliForAnyone();
  try {
    const r = await runTcplens(['accept'], { uid: 65534, cli: anyone.cli });
    assertError(r, 'TCPLENS_ERR_NOT_ROOT');
    assert.match(r.stderr, /sudo/);
  } finally {
    anyone.dispose();
  }
});

// tcplens hops: bad usage is exit 2 with a code and a hint, before anything is loaded; bad
// targets among good ones are per-target results instead (see test/kernel/hops-lab.test.ts).
import test from 'node:test';
import assert from 'node:assert/strict';
import { runTcplens } from '../kernel/helpers/tcplens-cli.js';

const cases: [string, string[], string][] = [
  ['no target', ['hops'], 'TCPLENS_ERR_BAD_TARGET'],
  ['no target, only flags', ['hops', '--json', '--count', '2'], 'TCPLENS_ERR_BAD_TARGET'],
  ['a huge target list', ['hops', ...Array.from({ length: 4097 }, (_, i) => `10.0.${i >> 8}.${i & 255}:80`)], 'TCPLENS_ERR_BAD_TARGET'],
  ['--count 0', ['hops', '127.0.0.1:1', '--count', '0'], 'TCPLENS_ERR_BAD_FLAG'],
  ['--count 101', ['hops', '127.0.0.1:1', '--count', '101'], 'TCPLENS_ERR_BAD_FLAG'],
  ['--concurrency 0', ['hops', '127.0.0.1:1', '--concurrency', '0'], 'TCPLENS_ERR_BAD_FLAG'],
  ['--timeout nonsense', ['hops', '127.0.0.1:1', '--timeout', 'soon'], 'TCPLENS_ERR_BAD_FLAG'],
  ['--timeout 0', ['hops', '127.0.0.1:1', '--timeout', '0'], 'TCPLENS_ERR_BAD_FLAG'],
  ['unknown flag', ['hops', '127.0.0.1:1', '--ttl'], 'TCPLENS_ERR_UNKNOWN_FLAG'],
];

for (const [name, args, code] of cases) {
  test(`hops: ${name} -> exit 2, ${code}`, async () => {
    const r = await runTcplens(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${code}:`));
    assert.match(r.stderr, /hint: /);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    assert.equal(r.stdout, '');
  });
}

test('hops --help documents the targets, the JSON fields and the exit codes', async () => {
  const r = await runTcplens(['hops', '--help']);
  assert.equal(r.code, 0);
  for (const word of ['tcp6://[addr]:port', 'initial_ttl', 'connect_ms', 'min, median, max', 'Exit status', '--concurrency', 'FULLNAT']) {
    assert.ok(r.stdout.includes(word), word);
  }
});

// A bench whose reader goes away (`| head`) goes on to its end and its cleanup instead of dying
// on EPIPE with a stack trace: bench/stdout-closed.ts, which every bench a user runs imports first.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../../bench/stdout-closed.js', import.meta.url));

/** A stand-in bench: prints figures for a while after its reader left, then "cleaned up" on stderr. */
function run(withModule: boolean): Promise<{ code: number | null; stderr: string }> {
  const script = `${withModule ? `await import(${JSON.stringify(MODULE)});` : ''}
    for (let i = 0; i < 200; i++) { console.log('figure', i, 'x'.repeat(2000)); await new Promise((r) => setTimeout(r, 2)); }
    process.stderr.write('cleaned up\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.once('data', () => child.stdout.destroy()); // `head -1`
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

test('a bench whose stdout is closed finishes and cleans up, without a stack trace', { timeout: 20_000 }, async () => {
  const r = await run(true);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, 'cleaned up\n');
  // and without the module the same script dies on EPIPE before its cleanup: the test can fail
  const bare = await run(false);
  assert.notEqual(bare.code, 0);
  assert.match(bare.stderr, /EPIPE/);
  assert.doesNotMatch(bare.stderr, /cleaned up/);
});

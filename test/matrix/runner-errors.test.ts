// The kernel matrix's own failures are coded and exit 2, apart from test failures (exit 1): a
// kernel it cannot find, a package that is no kernel, a guest that does not boot. Run by .ci/run
// before the matrix (needs root and qemu: scripts/setup.sh --matrix).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplens-matrix-'));
// a private cache, so these runs never touch the real one's kernels
const env = { ...process.env, TCPLENS_KERNEL_CACHE: join(dir, 'cache') };
after(() => rmSync(dir, { recursive: true, force: true }));

function matrix(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(join(repoRoot, 'scripts/kernel-matrix.sh'), args, { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stderr: r.stderr };
}

/** A .deb with the shape of a kernel package; `vmlinuz` is what its kernel file holds. */
function fakeKernelDeb(name: string, vmlinuz: Buffer): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'boot'), { recursive: true });
  mkdirSync(join(root, 'lib/modules/0.0.0-fake/kernel'), { recursive: true });
  writeFileSync(join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@localhost>\nDescription: not a kernel\n`);
  writeFileSync(join(root, 'boot/vmlinuz-0.0.0-fake'), vmlinuz);
  const deb = join(dir, `${name}.deb`);
  const b = spawnSync('dpkg-deb', ['--build', root, deb], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  return deb;
}

test('an unknown kernel is TCPLENS_ERR_MATRIX_NO_KERNEL, exit 2', { timeout: 60_000 }, () => {
  const r = matrix(['--kernel', '4.19']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^TCPLENS_ERR_MATRIX_NO_KERNEL: unknown kernel '4\.19'/m);
  assert.match(r.stderr, /hint: /);
});

test('a missing package file is TCPLENS_ERR_MATRIX_NO_KERNEL, exit 2', { timeout: 60_000 }, () => {
  const r = matrix(['--deb', join(dir, 'nope.deb')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /TCPLENS_ERR_MATRIX_NO_KERNEL: .*nope\.deb does not exist/);
});

test('a file that is no package is TCPLENS_ERR_MATRIX_BAD_PACKAGE, exit 2', { timeout: 60_000 }, () => {
  const junk = join(dir, 'junk.deb');
  writeFileSync(junk, 'not a deb');
  const r = matrix(['--deb', junk]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /TCPLENS_ERR_MATRIX_BAD_PACKAGE: /);
});

test('a kernel that does not boot is TCPLENS_ERR_MATRIX_NO_BOOT, exit 2, naming its console log', { timeout: 200_000 }, () => {
  const deb = fakeKernelDeb('linux-image-0.0.0-fake', Buffer.alloc(4096, 0x90));
  const r = matrix(['--deb', deb, '--timeout', '60', '--tests', 'dist/test/kernel/verifier.test.js']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /TCPLENS_ERR_MATRIX_NO_BOOT: 0\.0\.0-fake: the guest did not boot .*console\.log/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
});

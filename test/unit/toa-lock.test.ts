// The enable/disable lock: one holder at a time; a dead holder (or a reused pid) is stale.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock, processStart, withLock } from '../../src/capabilities/shared/lock.js';
import type { TcplensError } from '../../src/errors.js';

function tempLock(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcplens-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'sub', 'toa.lock');
}

test('a lock is exclusive while held and gone after release', (t) => {
  const path = tempLock(t);
  const lock = acquireLock(path, 'test');
  assert.equal(readFileSync(path, 'utf8'), `${process.pid} ${processStart(process.pid)}\n`);
  assert.throws(() => acquireLock(path, 'test'), (e: TcplensError) => e.code === 'TCPLENS_ERR_TOA_STATE' && /pid \d+ holds/.test(e.message));
  lock.release();
  assert.equal(existsSync(path), false);
  assert.equal(withLock(path, 'test', (l) => l.staleTakenFrom), null);
  assert.equal(existsSync(path), false, 'withLock releases');
});

test('withLock releases when its work throws', (t) => {
  const path = tempLock(t);
  assert.throws(() => withLock(path, 'test', () => { throw new Error('boom'); }), /boom/);
  assert.equal(existsSync(path), false);
});

test('a dead holder\'s lock, or one whose pid was reused, is taken over', (t) => {
  const path = tempLock(t);
  acquireLock(path, 'test').release();
  writeFileSync(path, '999999999 12345\n');
  const a = acquireLock(path, 'test');
  assert.equal(a.staleTakenFrom, 999999999);
  a.release();
  writeFileSync(path, `${process.pid} 1\n`); // our pid, but not our start time: a reused pid
  const b = acquireLock(path, 'test');
  assert.equal(b.staleTakenFrom, process.pid);
  b.release();
});

test('release leaves a lock that is no longer ours alone', (t) => {
  const path = tempLock(t);
  const lock = acquireLock(path, 'test');
  writeFileSync(path, '1 1\n');
  lock.release();
  assert.equal(readFileSync(path, 'utf8'), '1 1\n');
});

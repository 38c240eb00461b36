// The README's kernel table is rendered from matrix results: the cells follow the test verdicts.
import test from 'node:test';
import assert from 'node:assert/strict';
import { capabilityCell, renderTable, type KernelResult, type TestResult } from '../matrix/table.js';

const t = (file: string, status: TestResult['status'], reason?: string): TestResult => ({ file, name: `${file} ${status}`, status, reason, ms: 1 });
const ACCEPT = 'dist/test/kernel/accept.test.js';

test('a cell: passes counted, a failure shows, skips name their reason', () => {
  assert.equal(capabilityCell([t(ACCEPT, 'passed'), t(ACCEPT, 'passed')]), 'yes (2)');
  assert.equal(capabilityCell([t(ACCEPT, 'passed'), t(ACCEPT, 'failed')]), '**fails** (1 of 2)');
  assert.equal(capabilityCell([t(ACCEPT, 'skipped', 'needs X (Linux >= 5.15)')]), 'no: needs X (Linux >= 5.15)');
  assert.equal(capabilityCell([t(ACCEPT, 'passed'), t(ACCEPT, 'skipped', 'todo: y')]), 'yes (1), 1 skipped: todo: y');
  assert.equal(capabilityCell([]), 'not run');
});

test('the table: one column per kernel, capability rows from test files, probe rows from features', () => {
  const k = (label: string, tests: TestResult[], features: Record<string, string>): KernelResult =>
    ({ label, release: `${label}.0-1-amd64`, seconds: 10, date: '2026-12-02', passed: 0, failed: 0, skipped: 0, tests, features });
  const md = renderTable([
    k('5.10', [t(ACCEPT, 'skipped', 'needs Y')], { 'kprobe PMU': 'yes' }),
    k('6.1', [t(ACCEPT, 'passed')], { 'kprobe PMU': 'yes', 'inet_csk_accept parameters': '4' }),
  ]);
  const lines = md.split('\n');
  assert.equal(lines[0], '| | 5.10<br>5.10.0-1-amd64 | 6.1<br>6.1.0-1-amd64 |');
  assert.ok(lines.includes('| accept | no: needs Y | yes (1) |'), md);
  assert.ok(lines.includes('| probe: inet_csk_accept parameters | - | 4 |'), md);
  assert.ok(lines.includes('| probe: kprobe PMU | yes | yes |'), md);
});

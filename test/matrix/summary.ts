// The kernel matrix's results, on the host after the guests ran: per kernel passed / failed /
// skipped (with the missing feature named), merged into test/matrix/results.json (committed, one
// entry per kernel label, so a run of one kernel updates only its own), and with --table=1 the
// README's capability x kernel table rewritten from that file. Exit 1 when a kernel failed or
// brought no results back.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { renderTable, type KernelResult, type TestResult } from './table.js';

const OUT = join(repoRoot, 'test-output/matrix');
export const RESULTS = join(repoRoot, 'test/matrix/results.json');
const README = join(repoRoot, 'README.md');
const BEGIN = '<!-- kernel-matrix:begin (written by scripts/kernel-matrix.sh --table; do not edit) -->';
const END = '<!-- kernel-matrix:end -->';

function read(label: string): KernelResult | null {
  const dir = join(OUT, label);
  const file = join(dir, 'results.jsonl');
  if (!existsSync(file)) return null;
  const tests = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as TestResult & { nesting: number })
    .map(({ nesting: _n, ...t }) => t);
  const features = existsSync(join(dir, 'features.json')) ? JSON.parse(readFileSync(join(dir, 'features.json'), 'utf8')) as Record<string, string> : {};
  const text = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').trim() : '');
  return {
    label,
    release: text('release'),
    seconds: Number(text('seconds') || 0),
    date: new Date().toISOString().slice(0, 10),
    passed: tests.filter((t) => t.status === 'passed').length,
    failed: tests.filter((t) => t.status === 'failed').length,
    skipped: tests.filter((t) => t.status === 'skipped').length,
    tests,
    features,
  };
}

function main(): number {
  const args = process.argv.slice(2);
  const table = args.includes('--table=1');
  const labels = args.filter((a) => !a.startsWith('--'));
  const all: Record<string, KernelResult> = existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, 'utf8')) : {};
  let bad = 0;
  for (const label of labels) {
    const r = read(label);
    if (!r) {
      console.error(`TCPLENS_ERR_MATRIX_NO_RESULTS: ${label}: the guest wrote no results (${join(OUT, label)})`);
      bad++;
      continue;
    }
    all[label] = r;
    const verdict = r.failed ? 'FAILED' : 'passed';
    console.log(`${label} (${r.release}, ${r.seconds}s): ${verdict}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
    for (const t of r.tests.filter((x) => x.status !== 'passed')) {
      console.log(`  ${t.status}: ${t.file ?? ''} > ${t.name}${t.reason ? ` (${t.reason})` : ''}${t.error ? `: ${t.error.split('\n')[0]}` : ''}`);
    }
    if (r.failed) bad++;
  }
  const sorted = Object.fromEntries(Object.entries(all).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })));
  writeFileSync(RESULTS, JSON.stringify(sorted, null, 1) + '\n');
  if (table) {
    const readme = readFileSync(README, 'utf8');
    const a = readme.indexOf(BEGIN), b = readme.indexOf(END);
    if (a < 0 || b < a) {
      console.error(`TCPLENS_ERR_MATRIX_README: README.md has no ${BEGIN} ... ${END} section`);
      return 1;
    }
    writeFileSync(README, readme.slice(0, a + BEGIN.length) + '\n' + renderTable(Object.values(sorted)) + readme.slice(b));
    console.log('README.md: kernel table rewritten from test/matrix/results.json');
  }
  return bad ? 1 : 0;
}

process.exitCode = main();

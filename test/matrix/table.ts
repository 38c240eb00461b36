// The README's capability x kernel table, rendered from the matrix's results (never by hand):
// a capability row is the verdict of the test files that cover it, a feature row is what the
// feature probes found in that guest.
export interface TestResult {
  file: string | null;
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  reason?: string;
  error?: string;
  ms: number;
}

export interface KernelResult {
  label: string;
  release: string;
  seconds: number;
  date: string;
  passed: number;
  failed: number;
  skipped: number;
  tests: TestResult[];
  /** feature probe name -> what it found ("yes", or "no: why") */
  features: Record<string, string>;
}

/** Which capability a test file covers (the files the matrix runs). */
export const CAPABILITY_OF_FILE: Record<string, string> = {
  'dist/test/kernel/verifier.test.js': 'loading objects, verifier errors',
  'dist/test/kernel/ring-buffer.test.js': 'ring buffer reader',
  'dist/test/kernel/accept.test.js': 'accept',
  'dist/test/kernel/accept-acceptor.test.js': 'accept: pid/comm of the accepting process',
  'dist/test/kernel/kernel-features.test.js': 'feature probes, unsupported-feature errors',
  'dist/test/kernel/toa-parser.test.js': 'toa',
  'dist/test/kernel/toa-save-syn.test.js': 'toa --save-syn',
  'dist/test/kernel/accel-semantics.test.js': 'accel',
  'dist/test/kernel/hops-filter.test.js': 'hops',
};

export function capabilityCell(tests: TestResult[]): string {
  if (tests.length === 0) return 'not run';
  const failed = tests.filter((t) => t.status === 'failed').length;
  const skipped = tests.filter((t) => t.status === 'skipped');
  const passed = tests.length - failed - skipped.length;
  if (failed) return `**fails** (${failed} of ${tests.length})`;
  if (skipped.length && !passed) return `no: ${[...new Set(skipped.map((t) => t.reason ?? 'skipped'))].join('; ')}`;
  const cell = `yes (${passed})`;
  return skipped.length ? `${cell}, ${skipped.length} skipped: ${[...new Set(skipped.map((t) => t.reason ?? 'skipped'))].join('; ')}` : cell;
}

const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderTable(kernels: KernelResult[]): string {
  const head = `| | ${kernels.map((k) => `${esc(k.label)}<br>${esc(k.release)}`).join(' | ')} |`;
  const rule = `|---|${kernels.map(() => '---').join('|')}|`;
  const rows: string[] = [];
  const caps = [...new Set(kernels.flatMap((k) => k.tests.map((t) => CAPABILITY_OF_FILE[t.file ?? ''] ?? t.file ?? '?')))];
  for (const cap of caps) {
    const cells = kernels.map((k) => capabilityCell(k.tests.filter((t) => (CAPABILITY_OF_FILE[t.file ?? ''] ?? t.file ?? '?') === cap)));
    rows.push(`| ${esc(cap)} | ${cells.map(esc).join(' | ')} |`);
  }
  const features = [...new Set(kernels.flatMap((k) => Object.keys(k.features)))].sort();
  for (const f of features) rows.push(`| probe: ${esc(f)} | ${kernels.map((k) => esc(k.features[f] ?? '-')).join(' | ')} |`);
  const when = kernels.map((k) => `${k.label}: ${k.date}, ${k.seconds} s`).join('; ');
  return [head, rule, ...rows, '', `Measured by \`scripts/kernel-matrix.sh\` under qemu TCG (${when}); counts are tests passed.`, ''].join('\n');
}

// What a kernel test found about the kernel it ran on, for the matrix's table: merged into
// $TCPLENS_MATRIX_OUT/features.json when the test runs in a matrix guest, nothing otherwise.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function recordFeature(name: string, found: string): void {
  const dir = process.env.TCPLENS_MATRIX_OUT;
  if (!dir) return;
  const file = join(dir, 'features.json');
  const all = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, string> : {};
  all[name] = found;
  writeFileSync(file, JSON.stringify(all, null, 1) + '\n');
}

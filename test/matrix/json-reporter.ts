// node --test reporter for the kernel matrix's guests: one JSON line per test that ran (file,
// name, passed/failed/skipped and the skip's reason), read back by summary.ts on the host.
import { relative } from 'node:path';

interface TestEventData {
  name: string;
  nesting: number;
  file?: string;
  skip?: string | boolean;
  todo?: string | boolean;
  details?: { duration_ms?: number; error?: { message?: string; cause?: { message?: string } } };
}

export default async function* jsonReporter(source: AsyncIterable<{ type: string; data: TestEventData }>): AsyncGenerator<string> {
  for await (const ev of source) {
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    const d = ev.data;
    // a file's own pass/fail event names the file; its tests carry the verdicts
    if (d.file && d.name === d.file) continue;
    // a todo test is one its author marked as a known failure: it does not fail the run (as in
    // node --test itself), and its reason is kept
    const todo = d.todo !== undefined && d.todo !== false;
    const skipped = (d.skip !== undefined && d.skip !== false) || todo;
    const status = skipped ? 'skipped' : ev.type === 'test:fail' ? 'failed' : 'passed';
    const reason = todo ? `todo: ${typeof d.todo === 'string' ? d.todo : 'known failure'}` : typeof d.skip === 'string' ? d.skip : undefined;
    const error = d.details?.error;
    yield JSON.stringify({
      file: d.file ? relative(process.cwd(), d.file) : null,
      name: d.name,
      nesting: d.nesting,
      status,
      reason,
      error: status === 'failed' ? String(error?.cause?.message ?? error?.message ?? '').slice(0, 400) : undefined,
      ms: Math.round(d.details?.duration_ms ?? 0),
    }) + '\n';
  }
}

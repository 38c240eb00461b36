// What `tcplens toa` and `tcplens accel` share as commands over programs pinned under bpffs: their
// flags, the status text around each one's own rows, and
// how enable and disable report.
import type { PinnedStatus } from '../capabilities/shared/pinned-status.js';
import type { FlagTable } from './flags.js';

export const pinnedCommonFlags = {
  verbose: { type: 'boolean', short: 'v', help: 'show libbpf\'s and the verifier\'s full output' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies FlagTable;

export const pinnedStatusFlags = {
  json: { type: 'boolean', help: 'one JSON object instead of text' },
  ...pinnedCommonFlags,
} satisfies FlagTable;

export const ENABLE_VERBS = { enabled: 'enabled', updated: 'reconfigured in place', replaced: 'replaced the previous attachment' } as const;

type Row = [string, string];

/**
 * `tcplens CMD status` as text: where it is attached and pinned, the command's own rows, its
 * counters, the programs' cost (while BPF statistics are on), notes, and what is wrong.
 */
export function pinnedStatusText(cmd: string, s: PinnedStatus, own: { noCgroup: string; rows: Row[]; counters: string | null; notes?: Row[] }): string {
  if (!s.enabled) {
    return `tcplens ${cmd}: not enabled (nothing pinned at ${s.dir})${s.busy ? `; an enable/disable is running (pid ${s.busy})` : ''}\n`;
  }
  const rows: Row[] = [
    ['cgroup', s.cgroup ? `${s.cgroup.path ?? '(not found under the cgroup2 mount)'} (id ${s.cgroup.id})` : own.noCgroup],
    ['pinned at', s.dir],
    ['programs', s.programs.map((p) => `${p.program} (prog ${p.progId}, link ${p.linkId})`).join(', ')],
    ...own.rows,
  ];
  if (own.counters) rows.push(['counters', own.counters]);
  if (s.programs.some((p) => p.runCnt > 0)) {
    rows.push(['cost', s.programs.map((p) => `${p.program} ${p.nsPerRun ?? '-'} ns/run over ${p.runCnt} runs`).join(', ')]);
  }
  rows.push(...(own.notes ?? []));
  if (s.busy) rows.push(['busy', `an enable/disable is running (pid ${s.busy})`]);
  for (const p of s.problems) rows.push(['problem', p]);
  const head = `tcplens ${cmd}: enabled${s.complete ? '' : ` (INCOMPLETE: run \`tcplens ${cmd} enable ...\` again, or \`tcplens ${cmd} disable\`)`}\n`;
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return head + rows.map(([k, v]) => `  ${k.padEnd(width)} ${v}`).join('\n') + '\n';
}

/** What disable did (notes on stderr), or that there was nothing to do. */
export function reportDisable(cmd: string, pinDir: string, r: { dir: string; removed: string[]; notes: string[] } | null, counters: string | null): boolean {
  if (!r) {
    process.stdout.write(`tcplens ${cmd}: not enabled (nothing pinned at ${pinDir}); nothing to do\n`);
    return false;
  }
  for (const n of r.notes) process.stderr.write(`tcplens: ${n}\n`);
  process.stdout.write(`tcplens ${cmd}: disabled; removed ${r.removed.join(', ') || 'an empty directory'} from ${r.dir}\n`);
  if (counters) process.stdout.write(`tcplens ${cmd}: final counters: ${counters}\n`);
  return true;
}

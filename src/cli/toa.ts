// tcplens toa enable|disable|status: unmodified applications get the real client from accept() and
// getpeername(), believed only from the balancers named. The programs stay in the kernel after the
// command exits (pinned); status reads them back.
import { checkToaConfig, disableToa, enableToa, type ToaConfig } from '../capabilities/toa/toa.js';
import { toaStatus, type ToaCounters, type ToaStatus } from '../capabilities/toa/status.js';
import { toaPinDir } from '../capabilities/toa/pinned.js';
import { resolveCgroup } from '../kernel/cgroup.js';
import { requireFeatures, requireKernel } from '../kernel/features.js';
import { TcplensError } from '../errors.js';
import { parseCidr } from '../net/addr.js';
import { dialectTable } from '../net/toa.js';
import { helpText, parseFlags, type FlagTable, noArguments, runSubcommand } from './flags.js';
import { ENABLE_VERBS, pinnedCommonFlags as common, pinnedStatusFlags as statusFlags, pinnedStatusText, reportDisable } from './pinned-command.js';

export const enableFlags = {
  'trusted-lb': { type: 'string', multiple: true, arg: 'CIDR', help: 'REQUIRED: balancers whose TOA is believed (repeatable, or comma-separated)' },
  cgroup: { type: 'string', arg: 'PATH', help: 'cgroup v2 of the servers (default: the whole cgroup2 mount, every process)' },
  toa: { type: 'string', multiple: true, arg: 'KIND/LEN', help: 'add a TOA dialect (defaults: 254/8, 253/20, 254/20)' },
  'no-default-toa': { type: 'boolean', help: 'use only the --toa dialects given' },
  'toa-conflict': { type: 'string', arg: 'reject|first', default: 'reject', help: 'a header with two TOAs (a client can forge one): believe none (reject), or the first, for balancers known to write theirs first or strip clients\' (LVS, DPVS); counted either way' },
  'save-syn': { type: 'boolean', help: 'also read a TOA that only the SYN carries: TCP_SAVE_SYN on listeners opened from now on (disable turns it off again; status counts them)' },
  ...common,
} satisfies FlagTable;

const USAGE = `usage: tcplens toa <enable|disable|status> [flags]

  enable   attach (or reconfigure) and pin under ${toaPinDir()}
  disable  remove everything; applications see the balancer again
  status   what is attached where, the trusted balancers, dialects and counters
`;

/** Flags -> configuration, every check that needs no root done here (the cgroup is resolved later). */
export function toaConfig(v: ReturnType<typeof parseFlags<typeof enableFlags>>): ToaConfig {
  noArguments(v, 'toa enable');
  const conflict = v['toa-conflict'] as string;
  if (conflict !== 'reject' && conflict !== 'first') {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--toa-conflict ${conflict}: expected reject or first`, 'reject believes no TOA of a header that has two');
  }
  const cfg: ToaConfig = {
    cgroup: '',
    trusted: v['trusted-lb'].flatMap((c) => c.split(',')).filter(Boolean).map(parseCidr),
    dialects: dialectTable(v.toa, !v['no-default-toa']),
    toaConflict: conflict,
    saveSyn: v['save-syn'],
  };
  checkToaConfig(cfg);
  return cfg;
}

export function countersLine(c: ToaCounters): string {
  return `connections ${c.connections}, trusted TOA stored ${c.stored}, rewritten ${c.rewritten} (${c.answers} answers), ` +
    `untrusted ${c.untrusted}, conflict ${c.conflict}, malformed ${c.malformed}, no TOA ${c.no_toa}, unrepresentable ${c.unrepresentable}, store failed ${c.store_failed}`;
}

export function statusText(s: ToaStatus): string {
  return pinnedStatusText('toa', s, {
    noCgroup: '(mixed or none)',
    rows: [
      ['trusted lb', s.trusted.join(', ') || '(unknown)'],
      ['dialects', s.dialects.join(', ') || '(unknown)'],
      ['two TOAs', s.toaConflict === null ? '(unknown)' : s.toaConflict === 'first' ? 'the first is believed (--toa-conflict first)' : 'neither is believed'],
      ['saved SYN', s.saveSyn === null ? '(unknown)' : s.saveSyn ? `read; TCP_SAVE_SYN set by tcplens on ${s.saveSynListeners} listener(s) (disable turns it off)` : 'not read (TOA from the handshake ACK)'],
    ],
    counters: s.counters && countersLine(s.counters),
  });
}

async function enable(argv: string[]): Promise<number> {
  const v = parseFlags(argv, enableFlags, 'toa enable');
  if (v.help) {
    process.stdout.write(helpText('tcplens toa enable --trusted-lb CIDR... [flags]', enableFlags));
    return 0;
  }
  const cfg = toaConfig(v);
  requireKernel('toa enable', v.verbose);
  requireFeatures(['sock_ops', 'cgroup_sock_addr'], ['sk_storage']);
  cfg.cgroup = resolveCgroup(v.cgroup);
  const r = enableToa(cfg);
  for (const n of r.notes) process.stderr.write(`tcplens: ${n}\n`);
  process.stdout.write(`tcplens toa: ${ENABLE_VERBS[r.action]} on ${cfg.cgroup}; trusting ${cfg.trusted.map((c) => c.text).join(', ')}; ` +
    `dialects ${cfg.dialects.map((d) => `${d.kind}/${d.len}`).join(', ')}; pinned at ${r.dir}\n`);
  if (r.action !== 'enabled' && !r.keptClients) {
    process.stdout.write('tcplens toa: connections accepted before now are no longer rewritten\n');
  }
  return 0;
}

async function disable(argv: string[]): Promise<number> {
  const v = parseFlags(argv, common, 'toa disable');
  if (v.help) {
    process.stdout.write(helpText('tcplens toa disable', common));
    return 0;
  }
  noArguments(v, 'toa disable');
  requireKernel('toa disable', v.verbose);
  const r = disableToa();
  if (reportDisable('toa', toaPinDir(), r, r?.counters ? countersLine(r.counters) : null) && r?.saveSyn?.restored) {
    process.stdout.write(`tcplens toa: TCP_SAVE_SYN turned off again on ${r.saveSyn.restored} listener(s)\n`);
  }
  return 0;
}

async function status(argv: string[]): Promise<number> {
  const v = parseFlags(argv, statusFlags, 'toa status');
  if (v.help) {
    process.stdout.write(helpText('tcplens toa status [--json]', statusFlags));
    return 0;
  }
  noArguments(v, 'toa status');
  requireKernel('toa status', v.verbose);
  const s = toaStatus();
  process.stdout.write(v.json ? `${JSON.stringify(s)}\n` : statusText(s));
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { enable, disable, status };

export function run(argv: string[]): Promise<number> {
  return runSubcommand('toa', argv, USAGE, SUBCOMMANDS);
}

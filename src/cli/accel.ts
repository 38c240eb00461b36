// tcplens accel enable|disable|status: local TCP connections of a cgroup skip the TCP/IP stack
// between their two sockets (SOCKHASH + sk_msg redirect). The programs stay in the kernel after
// the command exits (pinned); status reads them back. Measure first: bench/accel/accel-bench.ts.
import { checkAccelConfig, disableAccel, enableAccel, type AccelConfig } from '../capabilities/accel/accel.js';
import { accelStatus, type AccelCounters, type AccelStatus } from '../capabilities/accel/status.js';
import { accelPinDir } from '../capabilities/accel/pinned.js';
import { resolveCgroup } from '../kernel/cgroup.js';
import { requireFeatures, requireKernel } from '../kernel/features.js';
import { helpText, intFlag, parseFlags, type FlagTable, noArguments, runSubcommand } from './flags.js';
import { ENABLE_VERBS, pinnedCommonFlags as common, pinnedStatusFlags as statusFlags, pinnedStatusText, reportDisable } from './pinned-command.js';

export const accelEnableFlags = {
  cgroup: { type: 'string', arg: 'PATH', help: 'REQUIRED: cgroup v2 of the applications whose local connections are accelerated' },
  port: { type: 'string', multiple: true, arg: 'N', help: 'only connections where either end uses this port (repeatable, or comma-separated; default: all)' },
  ...common,
} satisfies FlagTable;

const USAGE = `usage: tcplens accel <enable|disable|status> [flags]

  enable   attach (or reconfigure) and pin under ${accelPinDir()}; --cgroup is required
  disable  remove everything; open connections go on as plain TCP
  status   what is attached where, the ports, sockets in the map and counters

Measure whether it pays on your host first: node dist/bench/accel/accel-bench.js
`;

/** Flags -> configuration, every check that needs no root done here (the cgroup is resolved later). */
export function accelConfig(v: ReturnType<typeof parseFlags<typeof accelEnableFlags>>): AccelConfig {
  noArguments(v, 'accel enable');
  const ports = [...new Set(v.port.flatMap((p) => p.split(',')).filter(Boolean).map((p) => intFlag('port', p, 1, 65535, 'TCPLENS_ERR_BAD_PORT')))];
  const cfg: AccelConfig = { cgroup: v.cgroup ?? '', ports };
  checkAccelConfig(cfg);
  return cfg;
}

export function accelCountersLine(c: AccelCounters): string {
  return `redirected ${c.redirected_msgs} msgs / ${c.redirected_bytes} bytes, passed ${c.passed_msgs} msgs / ${c.passed_bytes} bytes, ` +
    `no peer ${c.no_peer_msgs} msgs / ${c.no_peer_bytes} bytes; connections seen ${c.established}, sockets inserted ${c.inserted}, ` +
    `not local ${c.not_local}, other port ${c.filtered}, insert failed ${c.insert_failed}, state failed ${c.state_failed}; sent back to plain TCP under memory pressure ${c.memory_high}`;
}

export function accelStatusText(s: AccelStatus): string {
  return pinnedStatusText('accel', s, {
    noCgroup: '(none)',
    rows: [
      ['ports', s.ports === null ? '(unknown)' : s.ports.length ? s.ports.join(', ') : 'all'],
      ['sockets', s.sockets === null ? '(unknown)' : `${s.sockets} in the map`],
    ],
    counters: s.counters && accelCountersLine(s.counters),
    notes: [['note', 'connections from before enable, to other hosts or namespaces go the normal way; measured SLOWER with accel: ' +
      'bulk in small writes (1 KiB: 0.71x) and the p99 of busy-polling readers; a blocking recv() after shutdown(SHUT_WR) can fail with EAGAIN. ' +
      'Measure on your host: node dist/bench/accel/accel-bench.js']],
  });
}

async function enable(argv: string[]): Promise<number> {
  const v = parseFlags(argv, accelEnableFlags, 'accel enable');
  if (v.help) {
    process.stdout.write(helpText('tcplens accel enable --cgroup PATH [--port N ...]', accelEnableFlags));
    return 0;
  }
  const cfg = accelConfig(v);
  requireKernel('accel enable', v.verbose);
  requireFeatures(['sock_ops', 'sk_msg'], ['sockhash', 'sk_storage']);
  cfg.cgroup = resolveCgroup(cfg.cgroup);
  const r = enableAccel(cfg);
  for (const n of r.notes) process.stderr.write(`tcplens: ${n}\n`);
  process.stdout.write(`tcplens accel: ${ENABLE_VERBS[r.action]} on ${cfg.cgroup}; ports ${cfg.ports.length ? cfg.ports.join(', ') : 'all'}; pinned at ${r.dir}\n`);
  return 0;
}

async function disable(argv: string[]): Promise<number> {
  const v = parseFlags(argv, common, 'accel disable');
  if (v.help) {
    process.stdout.write(helpText('tcplens accel disable', common));
    return 0;
  }
  noArguments(v, 'accel disable');
  requireKernel('accel disable', v.verbose);
  const r = disableAccel();
  reportDisable('accel', accelPinDir(), r, r?.counters ? accelCountersLine(r.counters) : null);
  return 0;
}

async function status(argv: string[]): Promise<number> {
  const v = parseFlags(argv, statusFlags, 'accel status');
  if (v.help) {
    process.stdout.write(helpText('tcplens accel status [--json]', statusFlags));
    return 0;
  }
  noArguments(v, 'accel status');
  requireKernel('accel status', v.verbose);
  const s = accelStatus();
  process.stdout.write(v.json ? `${JSON.stringify(s)}\n` : accelStatusText(s));
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { enable, disable, status };

export function run(argv: string[]): Promise<number> {
  return runSubcommand('accel', argv, USAGE, SUBCOMMANDS);
}

// tcplens accept: flags -> AcceptOptions -> AcceptTracer -> sinks; a summary on exit, however it
// ends (Ctrl-C, SIGTERM, --duration, or a reader that closed our stdout, as `| head` does).
import { existsSync } from 'node:fs';
import { describePlan } from '../capabilities/accept/attach-plan.js';
import { AcceptTracer, DEFAULT_MERGE_CAPACITY, MAX_PORTS, type AcceptOptions, type AcceptRecord, type AcceptCounters } from '../capabilities/accept/accept.js';
import { resolveCgroup, cgroup2Mount } from '../kernel/cgroup.js';
import { requireFeatures, requireKernel } from '../kernel/features.js';
import { TcplensError } from '../errors.js';
import { isStdoutClosed, onCleanup, untilStopped } from '../lifecycle.js';
import { parseCidr } from '../net/addr.js';
import { dialectTable } from '../net/toa.js';
import { makeSink } from '../sinks/index.js';
import type { Column } from '../sinks/table.js';
import { durationFlag, helpText, intFlag, parseFlags, type FlagTable, noArguments } from './flags.js';
import { collectorAgentFlags, finishShipper, shipperFromFlags } from './collector-agent-flags.js';

export const flags = {
  cgroup: { type: 'string', arg: 'PATH', help: 'cgroup v2 to watch (default: the whole cgroup2 mount, every process)' },
  port: { type: 'string', short: 'p', multiple: true, arg: 'N', help: `only these local ports (repeatable, up to ${MAX_PORTS}); filtered in the kernel` },
  ipv4: { type: 'boolean', short: '4', help: 'IPv4 connections only' },
  ipv6: { type: 'boolean', short: '6', help: 'IPv6 connections only' },
  'merge-window': { type: 'string', arg: 'DUR', default: '10s', help: 'a local/client pair\'s first connection is shown at once; its repeats within DUR are counted and shown as one summary (=N) when the window closes (0 = every connection)' },
  'merge-capacity': { type: 'string', arg: 'N', default: String(DEFAULT_MERGE_CAPACITY), help: 'open merge windows kept in the kernel; beyond that, connections are shown unmerged (counted as merge_full)' },
  'trusted-lb': { type: 'string', multiple: true, arg: 'CIDR', help: 'balancers whose TOA is believed (repeatable); without it every TOA is used' },
  toa: { type: 'string', multiple: true, arg: 'KIND/LEN', help: 'add a TOA dialect (defaults: 254/8, 253/20, 254/20)' },
  'no-default-toa': { type: 'boolean', help: 'use only the --toa dialects given' },
  'toa-conflict': { type: 'string', arg: 'reject|first', default: 'reject', help: 'a header with two TOAs (a client can forge one): believe none (reject), or the first, for balancers known to write theirs first or strip clients\' (LVS, DPVS); conflicts are counted and flagged either way' },
  'save-syn': { type: 'boolean', help: 'also read a TOA that only the SYN carries: keeps each SYN on listeners opened from now on (TCP_SAVE_SYN, turned off again at exit)' },
  'toa-ko': { type: 'string', arg: 'auto|yes|no', default: 'auto', help: "read toa.ko's per-socket TOA (auto: when the toa module is loaded)" },
  json: { type: 'boolean', help: 'one JSON object per line instead of a table' },
  duration: { type: 'string', arg: 'DUR', help: 'stop after DUR, e.g. 90m (default: until Ctrl-C)' },
  ...collectorAgentFlags,
  verbose: { type: 'boolean', short: 'v', help: 'show libbpf\'s and the verifier\'s full output' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies FlagTable;

const columns: Column<AcceptRecord>[] = [
  { title: 'TIME', width: 12, value: (r) => (r.summary ? r.last ?? r.time : r.time).slice(11, 23) },
  { title: 'LOCAL', width: 22, value: (r) => r.local },
  { title: 'PEER', width: 22, value: (r) => r.peer },
  { title: 'CLIENT', width: 22, value: (r) => r.client ?? (r.toa && !r.trusted ? `(untrusted ${r.toa.claimed})` : null) },
  { title: 'TOA', width: 12, value: (r) => (r.malformed === 'conflict' ? 'CONFLICT' : r.toa ? `${r.toa.kind}/${r.toa.len} ${r.toa.source}` : r.malformed ? 'malformed' : null) },
  { title: 'COUNT', width: 6, value: (r) => (r.summary ? `=${r.count}` : r.count) },
  { title: 'HOPS', width: 4, value: (r) => r.hops },
  { title: 'KNS', width: 6, value: (r) => r.kernel_ns },
  { title: 'PROCESS', width: 16, value: (r) => (r.pid ? `${r.pid}/${r.comm}` : null) },
  { title: 'CGROUP', width: 0, value: (r) => r.cgroup },
];

export function acceptOptions(v: ReturnType<typeof parseFlags<typeof flags>>): AcceptOptions {
  noArguments(v, 'accept');
  if (v.port.length > MAX_PORTS) throw new TcplensError('TCPLENS_ERR_BAD_PORT', `at most ${MAX_PORTS} --port flags`, 'watch fewer ports, or all of them');
  if (v.ipv4 && v.ipv6) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '-4 and -6 together leave nothing to see', 'give one of them, or neither for both');
  const conflict = v['toa-conflict'] as string;
  if (conflict !== 'reject' && conflict !== 'first') {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--toa-conflict ${conflict}: expected reject or first`, 'reject believes no TOA of a header that has two');
  }
  return {
    cgroup: '', // resolved after the root check, so a non-root user hears about root first
    ports: v.port.flatMap((p) => p.split(',')).map((p) => intFlag('port', p, 1, 65535, 'TCPLENS_ERR_BAD_PORT')),
    family: v.ipv4 ? 4 : v.ipv6 ? 6 : 0,
    mergeWindowNs: durationFlag('merge-window', v['merge-window'] as string, 3600n * 1_000_000_000n, 'TCPLENS_ERR_BAD_WINDOW'),
    mergeCapacity: intFlag('merge-capacity', v['merge-capacity'] as string, 1, 1 << 20),
    trusted: v['trusted-lb'].flatMap((c) => c.split(',')).map(parseCidr),
    dialects: dialectTable(v.toa, !v['no-default-toa']),
    toaConflict: conflict,
    saveSyn: v['save-syn'],
    readToaKo: toaKoFlag(v['toa-ko'] as string),
  };
}

function toaKoFlag(value: string): boolean {
  if (value === 'auto') return existsSync('/sys/module/toa');
  if (value === 'yes' || value === 'no') return value === 'yes';
  throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--toa-ko ${value}: expected auto, yes or no`, 'auto reads it only when the toa module is loaded');
}

export function summaryLine(c: AcceptCounters): string {
  return `tcplens accept: ${c.connections} connections in ${c.records} events (${c.merged} merged, ${c.merge_full} unmerged: merge map full), ${c.lost} lost; ` +
    `TOA seen ${c.toa_seen}, untrusted ${c.toa_untrusted}, conflict ${c.toa_conflict}, malformed ${c.toa_malformed}, none ${c.no_toa}; filtered ${c.filtered}`;
}

/** Listeners opened before tcplens keep no SYN: say which, so a missing SYN-only TOA is no mystery. */
async function reportOldListeners(tracer: AcceptTracer, cgroup: string): Promise<void> {
  const root = cgroup2Mount();
  const rel = cgroup === root ? '' : cgroup.slice(root.length + 1);
  const old = (await tracer.listenersBefore()).filter((l) => l.cgroup !== null && (rel === '' || l.cgroup === rel || l.cgroup.startsWith(`${rel}/`)));
  if (!old.length) return;
  const shown = old.slice(0, 8).map((l) => `${l.pid}/${l.comm} :${l.port}`).join(', ');
  process.stderr.write(`tcplens: --save-syn: ${old.length} listener${old.length === 1 ? '' : 's'} opened before tcplens keep no SYN ` +
    `(their TOA is read from the handshake ACK only): ${shown}${old.length > 8 ? ', ...' : ''}\n`);
}

export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(argv, flags, 'accept');
  if (v.help) {
    process.stdout.write(helpText('tcplens accept [flags]', flags));
    return 0;
  }
  const opts = acceptOptions(v);
  const shipper = shipperFromFlags<AcceptRecord>(v, 'accept');
  const stopAfter = v.duration ? Number(durationFlag('duration', v.duration) / 1_000_000n) : 0;
  requireKernel('accept', v.verbose);
  requireFeatures(['sock_ops'], ['ringbuf']);
  opts.cgroup = resolveCgroup(v.cgroup);

  const sink = makeSink<AcceptRecord>(v.json ? 'ndjson' : 'table', process.stdout, columns);
  if (opts.trusted.length === 0) {
    process.stderr.write('tcplens: no --trusted-lb given: a TOA from ANY peer is taken as the client (clients can forge it)\n');
  }
  const tracer = AcceptTracer.start(opts, (r) => {
    if (!isStdoutClosed()) sink.write(r);
    shipper?.write(r);
  });
  // Whatever ends the process from here on, the program is detached and what was collected handed on.
  const summary = async () => {
    const r = await tracer.stop();
    if (!isStdoutClosed()) sink.close();
    process.stderr.write(`${summaryLine(r.counters)}\n`);
    // The records of the last windows go out now; a collector that is away gets a few seconds.
    await finishShipper(shipper);
    if (r.saveSyn) {
      process.stderr.write(`tcplens: TCP_SAVE_SYN turned off again on ${r.saveSyn.restored} listener(s)${r.saveSyn.gone ? ` (${r.saveSyn.gone} had closed)` : ''}\n`);
      for (const n of r.saveSyn.notes) process.stderr.write(`tcplens: ${n}\n`);
    }
  };
  const unregister = onCleanup('tcplens accept', summary);
  process.stderr.write(`tcplens: attached to ${opts.cgroup}\n`);
  if (v.verbose) process.stderr.write(`tcplens: ${describePlan(tracer.plan)}\n`);
  if (opts.saveSyn) void reportOldListeners(tracer, opts.cgroup).catch(() => {});

  await untilStopped(stopAfter);
  unregister();
  await summary();
  return 0;
}

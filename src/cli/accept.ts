// tcplens accept: flags -> AcceptOptions -> AcceptTracer -> sinks; a summary on exit.
import { existsSync } from 'node:fs';
import { AcceptTracer, MAX_PORTS, type AcceptOptions, type AcceptRecord, type AcceptCounters } from '../capabilities/accept/accept.js';
import { resolveCgroup } from '../kernel/cgroup.js';
import { requireBtf, requireFeatures, requireRoot } from '../kernel/features.js';
import { installLibbpfLog } from '../kernel/libbpf-log.js';
import { TcplensError } from '../errors.js';
import { parseCidr } from '../net/addr.js';
import { dialectTable } from '../net/toa.js';
import { makeSink } from '../sinks/sink.js';
import type { Column } from '../sinks/table.js';
import { durationFlag, helpText, intFlag, parseFlags, type FlagTable } from './flags.js';

export const flags = {
  cgroup: { type: 'string', arg: 'PATH', help: 'cgroup v2 to watch (default: the whole cgroup2 mount, every process)' },
  port: { type: 'string', short: 'p', multiple: true, arg: 'N', help: `only these local ports (repeatable, up to ${MAX_PORTS}); filtered in the kernel` },
  ipv4: { type: 'boolean', short: '4', help: 'IPv4 connections only' },
  ipv6: { type: 'boolean', short: '6', help: 'IPv6 connections only' },
  'merge-window': { type: 'string', arg: 'DUR', default: '10s', help: 'merge repeats of the same local/client within DUR into one event with a count (0 = off)' },
  'trusted-lb': { type: 'string', multiple: true, arg: 'CIDR', help: 'balancers whose TOA is believed (repeatable); without it every TOA is used' },
  toa: { type: 'string', multiple: true, arg: 'KIND/LEN', help: 'add a TOA dialect (defaults: 254/8, 253/20, 254/20)' },
  'no-default-toa': { type: 'boolean', help: 'use only the --toa dialects given' },
  'no-save-syn': { type: 'boolean', help: 'do not keep SYNs to read their TOA (only the handshake ACK is read)' },
  'toa-ko': { type: 'string', arg: 'auto|yes|no', default: 'auto', help: "read toa.ko's per-socket TOA (auto: when the toa module is loaded)" },
  json: { type: 'boolean', help: 'one JSON object per line instead of a table' },
  duration: { type: 'string', arg: 'DUR', help: 'stop after DUR (default: until Ctrl-C)' },
  verbose: { type: 'boolean', short: 'v', help: 'show libbpf\'s and the verifier\'s full output' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies FlagTable;

const columns: Column<AcceptRecord>[] = [
  { title: 'TIME', width: 12, value: (r) => r.time.slice(11, 23) },
  { title: 'LOCAL', width: 22, value: (r) => r.local },
  { title: 'PEER', width: 22, value: (r) => r.peer },
  { title: 'CLIENT', width: 22, value: (r) => r.client ?? (r.toa && !r.trusted ? `(untrusted ${r.toa.claimed})` : null) },
  { title: 'TOA', width: 12, value: (r) => (r.toa ? `${r.toa.kind}/${r.toa.len} ${r.toa.source}` : r.malformed ? 'malformed' : null) },
  { title: 'COUNT', width: 6, value: (r) => r.count },
  { title: 'KNS', width: 6, value: (r) => r.kernel_ns },
  { title: 'PROCESS', width: 16, value: (r) => (r.pid ? `${r.pid}/${r.comm}` : null) },
];

export function acceptOptions(v: ReturnType<typeof parseFlags<typeof flags>>): AcceptOptions {
  if (v._.length) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `unexpected argument '${v._[0]}'`, 'see: tcplens accept --help');
  if (v.port.length > MAX_PORTS) throw new TcplensError('TCPLENS_ERR_BAD_PORT', `at most ${MAX_PORTS} --port flags`, 'watch fewer ports, or all of them');
  if (v.ipv4 && v.ipv6) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '-4 and -6 together leave nothing to see', 'give one of them, or neither for both');
  return {
    cgroup: '', // resolved after the root check, so a non-root user hears about root first
    ports: v.port.flatMap((p) => p.split(',')).map((p) => intFlag('port', p, 1, 65535, 'TCPLENS_ERR_BAD_PORT')),
    family: v.ipv4 ? 4 : v.ipv6 ? 6 : 0,
    mergeWindowNs: durationFlag('merge-window', v['merge-window'] as string),
    trusted: v['trusted-lb'].flatMap((c) => c.split(',')).map(parseCidr),
    dialects: dialectTable(v.toa, !v['no-default-toa']),
    saveSyn: !v['no-save-syn'],
    readToaKo: toaKoFlag(v['toa-ko'] as string),
  };
}

function toaKoFlag(value: string): boolean {
  if (value === 'auto') return existsSync('/sys/module/toa');
  if (value === 'yes' || value === 'no') return value === 'yes';
  throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--toa-ko ${value}: expected auto, yes or no`, 'auto reads it only when the toa module is loaded');
}

export function summaryLine(c: AcceptCounters): string {
  return `tcplens accept: ${c.connections} connections in ${c.records} events (${c.merged} merged), ${c.lost} lost; ` +
    `TOA seen ${c.toa_seen}, untrusted ${c.toa_untrusted}, malformed ${c.toa_malformed}, none ${c.no_toa}; filtered ${c.filtered}`;
}

export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(argv, flags, 'accept');
  if (v.help) {
    process.stdout.write(helpText('tcplens accept [flags]', flags));
    return 0;
  }
  const opts = acceptOptions(v);
  const stopAfter = v.duration ? Number(durationFlag('duration', v.duration) / 1_000_000n) : 0;
  installLibbpfLog(v.verbose);
  requireRoot('accept');
  requireBtf();
  requireFeatures(['sock_ops'], ['ringbuf', 'sk_storage']); // tp_btf cannot be probed without a target: load() names it if missing
  opts.cgroup = resolveCgroup(v.cgroup);

  const sink = makeSink<AcceptRecord>(v.json ? 'ndjson' : 'table', process.stdout, columns);
  if (opts.trusted.length === 0) {
    process.stderr.write('tcplens: no --trusted-lb given: a TOA from ANY peer is taken as the client (clients can forge it)\n');
  }
  const tracer = AcceptTracer.start(opts, (r) => sink.write(r));
  process.stderr.write(`tcplens: attached to ${opts.cgroup}\n`);

  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (stopAfter) setTimeout(done, stopAfter).unref();
  });
  const counters = await tracer.stop();
  sink.close();
  process.stderr.write(`${summaryLine(counters)}\n`);
  return 0;
}

// tcplens http: flags -> HttpCaptureOptions -> HttpCapture (a file, stdin, or live rings behind
// the kernel filter) -> one row or JSON object per exchange; a status line while live; on any end
// (Ctrl-C, SIGTERM, --duration, end of file, a closed stdout, bad input) open exchanges come out
// as incomplete, then the summary, then everything is detached.
import { HttpCapture, type HttpCaptureOptions, type HttpRunSummary } from '../capabilities/http/http.js';
import { MAX_HOSTS } from '../capabilities/http/filter.js';
import { DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE } from '../kernel/packet-ring.js';
import { requireBtf, requireFeatures, requireRoot } from '../kernel/features.js';
import { installLibbpfLog } from '../kernel/libbpf-log.js';
import { TcplensError } from '../errors.js';
import { isStdoutClosed, onCleanup, stopSignal, untilStopped } from '../lifecycle.js';
import { parseCidr } from '../net/addr.js';
import { DEFAULT_REASSEMBLY_LIMITS } from '../net/tcp-reassembly.js';
import type { HttpExchange } from '../net/http1.js';
import { makeSink } from '../sinks/index.js';
import type { Column } from '../sinks/table.js';
import { durationFlag, helpText, intFlag, parseFlags, sizeFlag, type FlagTable, noArguments } from './flags.js';
import { collectorAgentFlags, finishShipper, shipperFromFlags } from './collector-agent-flags.js';

export const flags = {
  iface: { type: 'string', short: 'i', multiple: true, arg: 'IF', help: 'capture on this interface (repeatable; default: every interface)' },
  port: { type: 'string', short: 'p', multiple: true, arg: 'N', help: 'only TCP segments to or from these ports (repeatable; default: every port), also inside IPIP and VLANs; filtered in the kernel' },
  host: { type: 'string', multiple: true, arg: 'CIDR', help: `only segments to or from these addresses (repeatable, up to ${MAX_HOSTS}); the inner addresses of a tunnel` },
  netns: { type: 'string', arg: 'NAME|PATH|PID', help: 'live: capture inside this network namespace (ip netns name, /proc/PID/ns/net path, or a pid)' },
  snaplen: { type: 'string', arg: 'N', help: 'keep at most N bytes of each frame (default: whole frames)' },
  read: { type: 'string', short: 'r', arg: 'FILE', help: 'decode a pcap or pcapng file (- = standard input) instead of capturing; needs no root' },
  write: { type: 'string', short: 'w', arg: 'FILE', help: 'also save the frames the filter kept as pcap (tcpdump, tshark, Wireshark open it)' },
  json: { type: 'boolean', help: 'one JSON object per exchange instead of a table' },
  'probe-header': { type: 'string', arg: 'NAME', default: 'X-Tcplens-Probe', help: 'request header whose value is shown as probe' },
  duration: { type: 'string', arg: 'DUR', help: 'stop after DUR, e.g. 30s (default: until Ctrl-C, or the end of --read)' },
  'flow-bytes': { type: 'string', arg: 'SIZE', default: String(DEFAULT_REASSEMBLY_LIMITS.perFlowBytes), help: 'out-of-order bytes one connection may hold (e.g. 1m); past it its oldest hole is given up (counted)' },
  'total-bytes': { type: 'string', arg: 'SIZE', default: String(DEFAULT_REASSEMBLY_LIMITS.totalBytes), help: 'out-of-order bytes all connections may hold together (e.g. 64m)' },
  'max-flows': { type: 'string', arg: 'N', default: String(DEFAULT_REASSEMBLY_LIMITS.maxFlows), help: 'connections tracked at once; the least recently active is evicted beyond it (counted)' },
  'block-size': { type: 'string', arg: 'SIZE', default: String(DEFAULT_BLOCK_SIZE), help: 'live: bytes per ring block (a power of two, >= 4k)' },
  'block-count': { type: 'string', arg: 'N', default: String(DEFAULT_BLOCK_COUNT), help: 'live: blocks in the ring (ring = size x count, per interface)' },
  'block-timeout': { type: 'string', arg: 'DUR', default: '10ms', help: 'live: longest a partly filled block waits before it is handed over' },
  ...collectorAgentFlags,
  verbose: { type: 'boolean', short: 'v', help: 'show libbpf\'s and the verifier\'s full output' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies FlagTable;

const columns: Column<HttpExchange>[] = [
  { title: 'TIME', width: 12, value: (e) => e.time.slice(11, 23) },
  { title: 'CLIENT', width: 21, value: (e) => e.client },
  { title: 'SERVER', width: 21, value: (e) => e.server },
  { title: 'METHOD', width: 6, value: (e) => e.method },
  { title: 'STATUS', width: 6, value: (e) => e.status },
  { title: 'MS', width: 8, value: (e) => e.latency_ms },
  { title: 'REQ', width: 6, value: (e) => e.req_bytes },
  { title: 'RESP', width: 8, value: (e) => e.resp_bytes },
  { title: 'VLAN', width: 4, value: (e) => e.vlan },
  { title: 'TUNNEL', width: 15, value: (e) => (e.tunnel ? `${e.tunnel.type}:${e.tunnel.src}` : null) },
  { title: 'ERROR', width: 11, value: (e) => e.error },
  { title: 'HOST', width: 16, value: (e) => e.host },
  { title: 'PATH', width: 0, value: (e) => (e.probe ? `${e.path} [probe ${e.probe}]` : e.path) },
];

type Parsed = ReturnType<typeof parseFlags<typeof flags>>;

export function httpOptions(v: Parsed): HttpCaptureOptions {
  noArguments(v, 'http');
  const hosts = v.host.flatMap((h) => h.split(',')).map((h) => {
    try {
      return parseCidr(h);
    } catch {
      throw new TcplensError('TCPLENS_ERR_BAD_CIDR', `--host ${h}: not an address or CIDR`, 'e.g. --host 10.0.0.0/8 or --host fd00::1');
    }
  });
  if (hosts.length > MAX_HOSTS) throw new TcplensError('TCPLENS_ERR_BAD_CIDR', `at most ${MAX_HOSTS} --host ranges`, 'give wider ranges');
  // pcap bytes and exchanges on one stdout would be neither
  if (v.write === '-') throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--write - would mix pcap and exchanges on standard output', 'give a file name');
  if (v.read && v.iface.length) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--read and --iface together', 'read a file, or capture on an interface');
  return {
    ports: [...new Set(v.port.flatMap((p) => p.split(',')).map((p) => intFlag('port', p, 1, 65535, 'TCPLENS_ERR_BAD_PORT')))],
    hosts,
    snaplen: v.snaplen === undefined ? 0 : intFlag('snaplen', v.snaplen, 64, 262144),
    limits: {
      perFlowBytes: sizeFlag('flow-bytes', v['flow-bytes'] as string, 1 << 10, 1 << 30),
      totalBytes: sizeFlag('total-bytes', v['total-bytes'] as string, 1 << 10, 16 * (1 << 30)),
      maxFlows: intFlag('max-flows', v['max-flows'] as string, 1, 10_000_000),
    },
    probeHeader: v['probe-header'] as string,
    write: v.write,
  };
}

/** --netns: a name from `ip netns` (/run/netns/NAME), a pid, or a path as given. */
export function netnsPathOf(v: string): string {
  if (/^\d+$/.test(v)) return `/proc/${v}/ns/net`;
  if (v.includes('/')) return v;
  if (!/^[A-Za-z0-9_.-]+$/.test(v)) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--netns ${v}: not a namespace name, path or pid`, 'e.g. --netns blue, --netns /proc/1234/ns/net or --netns 1234');
  return `/run/netns/${v}`;
}

export function summaryLine(s: HttpRunSummary): string {
  const k = s.kernel ? `kernel_packets=${s.kernel.packets} kernel_drops=${s.kernel.drops} ring_freezes=${s.kernel.freezes} vlan_in_metadata=${s.kernel.vlanInMetadata} ` : '';
  return `tcplens http: summary packets=${s.packets} bytes=${s.bytes} ${k}flows=${s.flows} exchanges=${s.exchanges} incomplete=${s.incomplete} ` +
    `parse_errors=${s.parse_errors} evictions=${s.evictions} gaps=${s.gaps} skipped=${s.skipped} filtered_out=${s.filtered_out}` +
    `${s.written !== null ? ` written=${s.written}` : ''}`;
}

/** The live status line (a terminal only): rates since the last one, drops since the start. A row
 * written to the same terminal first wipes the line (clear), the next tick draws it again. */
class StatusLine {
  private timer: NodeJS.Timeout | null = null;
  private shown = false;

  start(cap: HttpCapture): void {
    if (!process.stderr.isTTY) return;
    let last = { t: Date.now(), packets: 0, exchanges: 0 };
    this.timer = setInterval(() => {
      const now = Date.now();
      const c = cap.pipeline.counters;
      const k = cap.kernelDrops();
      const dt = Math.max(1, now - last.t) / 1000;
      process.stderr.write(`\r\x1b[Ktcplens http: ${Math.round((c.packets - last.packets) / dt)} pkt/s, ${Math.round((c.exchanges - last.exchanges) / dt)} exchanges/s, ` +
        `${c.exchanges} exchanges, ${cap.pipeline.flows} flows, kernel drops ${k?.drops ?? 0}`);
      this.shown = true;
      last = { t: now, packets: c.packets, exchanges: c.exchanges };
    }, 1000);
    this.timer.unref();
  }

  clear(): void {
    if (!this.shown) return;
    process.stderr.write('\r\x1b[K');
    this.shown = false;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
  }
}

export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(argv, flags, 'http');
  if (v.help) {
    process.stdout.write(helpText('tcplens http [--iface IF] [--port N ...] [--read FILE|-] [flags]', flags));
    return 0;
  }
  const opts = httpOptions(v);
  const shipper = shipperFromFlags<HttpExchange>(v, 'http');
  const stopAfter = v.duration ? Number(durationFlag('duration', v.duration) / 1_000_000n) : 0;
  const live = v.read === undefined;
  const ring = live ? {
    ifaces: v.iface.flatMap((i) => i.split(',')),
    blockSize: sizeFlag('block-size', v['block-size'] as string, 4096, 1 << 30),
    blockCount: intFlag('block-count', v['block-count'] as string, 2, 65536),
    blockTimeoutMs: Number(durationFlag('block-timeout', v['block-timeout'] as string, 10_000n * 1_000_000n) / 1_000_000n) || 1,
    netnsPath: v.netns === undefined ? undefined : netnsPathOf(v.netns),
  } : null;
  if (!live && v.netns !== undefined) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--netns with --read', 'a file has no namespace; drop --netns');
  if (live) {
    installLibbpfLog(v.verbose);
    requireRoot('http');
    requireBtf();
    requireFeatures(['socket_filter']);
  }
  const sink = makeSink<HttpExchange>(v.json ? 'ndjson' : 'table', process.stdout, columns);
  const status = new StatusLine();
  const cap = new HttpCapture(opts, (e) => {
    shipper?.write(e);
    if (isStdoutClosed()) return;
    status.clear();
    sink.write(e);
  });
  const finish = async () => {
    status.stop();
    const s = await cap.stop();
    if (!isStdoutClosed()) sink.close();
    process.stderr.write(`${summaryLine(s)}\n`);
    await finishShipper(shipper);
  };
  const unregister = onCleanup('tcplens http', finish);
  let failure: unknown = null;
  if (ring) {
    cap.startLive(ring);
    status.start(cap);
    process.stderr.write(`tcplens: attached to ${ring.ifaces.length ? ring.ifaces.join(', ') : 'every interface'}${v.netns ? ` in ${ring.netnsPath}` : ''}` +
      `${opts.ports.length ? ` port ${opts.ports.join(',')}` : ''}\n`);
    await untilStopped(stopAfter);
  } else {
    const byTime = new AbortController();
    const timer = stopAfter ? setTimeout(() => byTime.abort(), stopAfter) : null;
    try {
      await cap.readFile(v.read as string, AbortSignal.any([stopSignal, byTime.signal]));
    } catch (e) {
      failure = e; // shown after the exchanges decoded before it and the summary
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
  unregister();
  await finish();
  if (failure) throw failure;
  return 0;
}

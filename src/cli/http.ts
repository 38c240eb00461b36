// tcplens http: flags -> HttpCaptureOptions -> HttpCapture (a file, stdin, or live rings behind
// the kernel filter) -> one row or JSON object per exchange; a status line while live; on any end
// (Ctrl-C, SIGTERM, --duration, end of file, a closed stdout, bad input) open exchanges come out
// as incomplete, then the summary, then everything is detached.
import { HttpCapture, type CapturedExchange, type HttpCaptureOptions, type HttpRunSummary } from '../capabilities/http/http.js';
import { MAX_HOSTS } from '../capabilities/http/filter.js';
import { DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE } from '../kernel/packet-ring.js';
import { requireFeatures, requireKernel } from '../kernel/features.js';
import { resolveNetnsList } from '../kernel/netns.js';
import { formatError, TcplensError } from '../errors.js';
import { isStdoutClosed, onCleanup, requestStop, stopSignal, untilStopped } from '../lifecycle.js';
import { parseCidr } from '../net/addr.js';
import { DEFAULT_REASSEMBLY_LIMITS } from '../net/tcp-reassembly.js';
import { makeSink } from '../sinks/index.js';
import type { Column } from '../sinks/table.js';
import { durationFlag, helpText, intFlag, parseFlags, sizeFlag, type FlagTable, noArguments } from './flags.js';
import { collectorAgentFlags, finishShipper, shipperFromFlags } from './collector-agent-flags.js';
import { BalanceAggregator, DEFAULT_GATEWAY_PORT, formatDistribution, formatProbePath, formatSummary, parseExpectFlags, probePaths,
  summaryJson, type SeenExchange } from '../capabilities/http/balance-summary.js';

export const flags = {
  iface: { type: 'string', short: 'i', multiple: true, arg: 'IF', help: 'capture on this interface (repeatable; default: every interface)' },
  port: { type: 'string', short: 'p', multiple: true, arg: 'N', help: 'only TCP segments to or from these ports (repeatable; default: every port), also inside IPIP and VLANs; filtered in the kernel' },
  host: { type: 'string', multiple: true, arg: 'CIDR', help: `only segments to or from these addresses (repeatable, up to ${MAX_HOSTS}); the inner addresses of a tunnel` },
  netns: { type: 'string', multiple: true, arg: 'NAME|PATH|PID', help: 'live: capture inside this network namespace (ip netns name, /proc/PID/ns/net path, or a pid); repeatable: one process, each exchange tagged with its netns' },
  snaplen: { type: 'string', arg: 'N', help: 'keep at most N bytes of each frame (default: whole frames)' },
  read: { type: 'string', short: 'r', arg: 'FILE', help: 'decode a pcap or pcapng file (- = standard input) instead of capturing; needs no root' },
  write: { type: 'string', short: 'w', arg: 'FILE', help: 'also save the frames the filter kept as pcap (tcpdump, tshark, Wireshark open it)' },
  json: { type: 'boolean', help: 'one JSON object per exchange instead of a table (with --balance: the summary as one object at exit; with --probe: one a probe, then the distribution)' },
  balance: { type: 'boolean', help: 'instead of exchanges: per tier, per backend, requests, share vs expected, p50/p99, errors, skew and cv, and a verdict naming the tier and node that skews; refreshed on stderr, printed at exit' },
  expect: { type: 'string', multiple: true, arg: 'CHOOSER=W1,W2,...', help: 'with --balance: the weights a chooser (lb, or a gateway\'s capture point) should follow over its backends in name order (default: equal)' },
  probe: { type: 'string', arg: 'RUN', help: 'instead of exchanges: per probe of this tcplens probe run, its path (balancer -> gateway -> pod, latency at each hop), and the run\'s spread over gateways and pods, at exit' },
  'gateway-port': { type: 'string', arg: 'N', default: String(DEFAULT_GATEWAY_PORT), help: 'with --balance/--probe: a request to this port came in from the balancer (tier 1); any other is a gateway\'s to a pod (tier 2)' },
  every: { type: 'string', arg: 'DUR', default: '3s', help: 'with --balance: how often the live summary is refreshed on stderr' },
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

const columns: Column<CapturedExchange>[] = [
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
      const c = cap.progress;
      const k = cap.kernelDrops();
      const dt = Math.max(1, now - last.t) / 1000;
      process.stderr.write(`\r\x1b[Ktcplens http: ${Math.round((c.packets - last.packets) / dt)} pkt/s, ${Math.round((c.exchanges - last.exchanges) / dt)} exchanges/s, ` +
        `${c.exchanges} exchanges, ${c.flows} flows, kernel drops ${k?.drops ?? 0}`);
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
    process.stdout.write(helpText('tcplens http [--iface IF] [--port N ...] [--read FILE|-] [--balance [--expect C=W,...] | --probe RUN] [flags]', flags));
    return 0;
  }
  const opts = httpOptions(v);
  const view = analysisView(v);
  const shipper = shipperFromFlags<CapturedExchange>(v, 'http');
  const stopAfter = v.duration ? Number(durationFlag('duration', v.duration) / 1_000_000n) : 0;
  const live = v.read === undefined;
  const ring = live ? {
    ifaces: v.iface.flatMap((i) => i.split(',')),
    blockSize: sizeFlag('block-size', v['block-size'] as string, 4096, 1 << 30),
    blockCount: intFlag('block-count', v['block-count'] as string, 2, 65536),
    blockTimeoutMs: Number(durationFlag('block-timeout', v['block-timeout'] as string, 10_000n * 1_000_000n) / 1_000_000n) || 1,
    netns: resolveNetnsList(v.netns),
  } : null;
  if (!live && v.netns.length) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--netns with --read', 'a file has no namespace; drop --netns');
  if (live) {
    requireKernel('http', v.verbose);
    requireFeatures(['socket_filter']);
  }
  const netnsColumn: Column<CapturedExchange> = { title: 'NETNS', width: 14, value: (e) => e.netns?.name ?? null };
  const sink = makeSink<CapturedExchange>(v.json ? 'ndjson' : 'table', process.stdout, ring?.netns.length ? [columns[0], netnsColumn, ...columns.slice(1)] : columns);
  const status = new StatusLine();
  const cap = new HttpCapture(opts, (e) => {
    shipper?.write(e);
    if (view) return view.add(e);
    if (isStdoutClosed()) return;
    status.clear();
    sink.write(e);
  }, {
    onNetnsGone: (err, left) => {
      status.clear();
      process.stderr.write(formatError(err));
      if (!left) requestStop('done');
    },
  });
  const finish = async () => {
    status.stop();
    const s = await cap.stop();
    view?.stop();
    if (!isStdoutClosed()) {
      if (view) viewFailed = view.print();
      sink.close();
    }
    process.stderr.write(`${summaryLine(s)}\n`);
    await finishShipper(shipper);
  };
  let viewFailed = false;
  const unregister = onCleanup('tcplens http', finish);
  let failure: unknown = null;
  if (ring) {
    cap.startLive(ring);
    if (view) view.start();
    else status.start(cap);
    process.stderr.write(`tcplens: attached to ${ring.ifaces.length ? ring.ifaces.join(', ') : 'every interface'}${ring.netns.length ? ` in ${ring.netns.map((n) => n.path).join(', ')}` : ''}` +
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
  // A namespace that went away cut its part of the capture short; an --expect that did not fit the data.
  return cap.netnsGone.length || viewFailed ? 1 : 0;
}

/** --balance or --probe RUN: exchanges are gathered, not printed; the result comes at exit (and,
 * for --balance, every --every on stderr while live). print() says whether something was wrong. */
interface AnalysisView { add(e: SeenExchange): void; start(): void; stop(): void; print(): boolean }

function analysisView(v: Parsed): AnalysisView | null {
  if (v.balance && v.probe !== undefined) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--balance and --probe together', 'one view at a time');
  if (v.expect.length && !v.balance) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--expect without --balance', 'add --balance');
  const rules = { gatewayPort: intFlag('gateway-port', v['gateway-port'] as string, 1, 65535, 'TCPLENS_ERR_BAD_PORT') };
  if (v.probe !== undefined) {
    const run = v.probe;
    if (!/^[A-Za-z0-9._:]{1,64}$/.test(run)) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--probe ${run.slice(0, 40)}: not a run id`, 'the run id tcplens probe printed, e.g. --probe 3fa2c1d0');
    const seen: SeenExchange[] = [];
    return {
      add: (e) => { if (e.probe?.startsWith(`${run}-`)) seen.push(e); },
      start: () => {},
      stop: () => {},
      print: () => {
        const { paths, distribution } = probePaths(run, seen, rules);
        const out = v.json ? [...paths.map((p) => JSON.stringify(p)), JSON.stringify({ distribution })] : [...paths.map(formatProbePath), ...formatDistribution(distribution)];
        process.stdout.write(out.map((l) => `${l}\n`).join(''));
        return false;
      },
    };
  }
  if (!v.balance) return null;
  const agg = new BalanceAggregator(rules, parseExpectFlags(v.expect));
  const everyMs = Number(durationFlag('every', v.every as string, 3_600_000_000_000n) / 1_000_000n) || 1000;
  let timer: NodeJS.Timeout | null = null;
  let drawn = 0;
  return {
    add: (e) => agg.add(e),
    start: () => {
      timer = setInterval(() => {
        const lines = agg.samples ? formatSummary(agg.summary()) : ['tcplens http --balance: no exchanges yet'];
        // A terminal redraws the block in place; a file or pipe gets each refresh after the last.
        const up = process.stderr.isTTY && drawn ? `\x1b[${drawn}A\x1b[J` : '';
        process.stderr.write(`${up}${lines.join('\n')}\n`);
        drawn = lines.length;
      }, everyMs);
      timer.unref();
    },
    stop: () => { if (timer) clearInterval(timer); timer = null; },
    print: () => {
      const s = agg.summary();
      process.stdout.write(v.json ? `${JSON.stringify(summaryJson(s))}\n` : `${formatSummary(s).join('\n')}\n`);
      for (const p of s.problems) process.stderr.write(formatError(new TcplensError('TCPLENS_ERR_BAD_FLAG', p, 'give one weight per backend the chooser has, in name order (the summary lists them)')));
      return s.problems.length > 0;
    },
  };
}

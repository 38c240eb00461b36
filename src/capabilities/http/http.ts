// tcplens http, the plan: a capture (a file or stdin, or live AF_PACKET rings behind the kernel
// filter, in this namespace or in several named ones) feeds an HttpPipeline per namespace in arrival order; exchanges go to the caller as they complete;
// stop() flushes open exchanges as incomplete and gives the end-of-run figures. Live and offline
// differ only in where packets come from (and who filters them: the kernel, or SegmentFilter
// with the same rules).
import { createReadStream, statSync, type ReadStream } from 'node:fs';
import { TcplensError } from '../../errors.js';
import type { Cidr } from '../../net/addr.js';
import { CaptureReader } from '../../net/capture-reader.js';
import type { CaptureRecord } from '../../net/capture-record.js';
import { HttpPipeline, type HttpPipelineSummary } from '../../net/http-pipeline.js';
import type { HttpExchange } from '../../net/http1.js';
import { LINKTYPE_ETHERNET } from '../../net/link-type.js';
import { decodeFrame, newTcpSegment } from '../../net/packet.js';
import { SegmentFilter } from '../../net/packet-filter.js';
import type { ReassemblyLimits } from '../../net/tcp-reassembly.js';
import { netnsInodeAt, type NetnsRef } from '../../kernel/netns.js';
import { ARPHRD_ETHER, ARPHRD_LOOPBACK, PACKET_OUTGOING, PacketRing, type PacketRingStats, type RingPacket } from '../../kernel/packet-ring.js';
import { CaptureFileWriter } from './capture-file.js';
import { HttpKernelFilter, type HttpFilterCounters } from './filter.js';

export interface HttpCaptureOptions {
  ports: number[];
  hosts: Cidr[];
  /** bytes kept of each frame; 0 = whole frames */
  snaplen: number;
  limits: Partial<ReassemblyLimits>;
  probeHeader?: string;
  /** --write: the kept frames go to this pcap ('-' = stdout) */
  write?: string;
}

export interface LiveOptions {
  /** interface names; empty = every interface of the namespace (of each namespace) */
  ifaces: string[];
  blockSize?: number;
  blockCount?: number;
  blockTimeoutMs?: number;
  /** capture inside these network namespaces (each with its own rings and pipeline); empty = ours */
  netns?: NetnsRef[];
  /** how often a namespace's path is checked for still being there (ms) */
  netnsCheckMs?: number;
}

/** What an exchange captured inside a --netns namespace carries: which one. */
export interface NetnsTag { name: string; inode: number }

/** An exchange as HttpCapture hands it on: with `netns` when it was captured in a named namespace. */
export type CapturedExchange = HttpExchange & { netns?: NetnsTag };

export interface HttpCaptureEvents {
  /** a namespace went away during the capture: its rings are closed, its open exchanges were
   * handed on as incomplete; `left` namespaces are still captured */
  onNetnsGone?: (err: TcplensError, left: number) => void;
}

export interface KernelDrops {
  packets: number;
  drops: number;
  freezes: number;
  /** frames whose outer VLAN tag came in packet metadata (VLAN offload), not in the frame */
  vlanInMetadata: number;
}

export interface HttpRunSummary extends HttpPipelineSummary {
  /** null when reading a file: no kernel was involved */
  kernel: KernelDrops | null;
  filter: HttpFilterCounters | null;
  written: number | null;
}

function openCapture(path: string): ReadStream {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new TcplensError('TCPLENS_ERR_PCAP', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      'give a pcap or pcapng file (or - for standard input)');
  }
  if (st.isDirectory()) throw new TcplensError('TCPLENS_ERR_PCAP', `${path} is a directory`, 'give a pcap or pcapng file');
  return createReadStream(path, { highWaterMark: 1 << 20 });
}

/** One place packets come from: a file, this namespace, or one --netns namespace. Each has its
 * own pipeline: the same connection seen in two namespaces (a gateway's pod leg and the pod's
 * node) is two flows, not one flow with every segment twice. */
interface Source {
  netns: NetnsRef | null;
  pipeline: HttpPipeline;
  rings: PacketRing[];
  gone: boolean;
  /** its rings being closed (a namespace gone, or stop()) */
  closing: Promise<void> | null;
}

const NO_PACKETS: HttpPipelineSummary = { packets: 0, bytes: 0, skipped: 0, filtered_out: 0, flows: 0, exchanges: 0, incomplete: 0, parse_errors: 0, evictions: 0, gaps: 0 };

function sumSummaries(xs: HttpPipelineSummary[]): HttpPipelineSummary {
  const out = { ...NO_PACKETS };
  for (const x of xs) for (const k of Object.keys(out) as (keyof HttpPipelineSummary)[]) out[k] += x[k];
  return out;
}

export class HttpCapture {
  private readonly sources: Source[] = [];
  private readonly writer: CaptureFileWriter | null;
  private filter: HttpKernelFilter | null = null;
  private stopped: HttpRunSummary | null = null;
  private readonly startedMs = Date.now();
  private vlanInMetadata = 0;
  private watch: NodeJS.Timeout | null = null;
  /** namespaces that went away during the capture, in that order */
  readonly netnsGone: NetnsRef[] = [];

  constructor(private readonly opts: HttpCaptureOptions, private readonly onExchange: (e: CapturedExchange) => void,
    private readonly events: HttpCaptureEvents = {}) {
    this.writer = opts.write ? new CaptureFileWriter(opts.write, opts.snaplen || undefined) : null;
  }

  private addSource(netns: NetnsRef | null): Source {
    const tag = netns ? { name: netns.name, inode: netns.inode } : undefined;
    const onExchange = tag ? (e: HttpExchange) => this.onExchange({ ...e, netns: tag }) : this.onExchange;
    const pipeline = new HttpPipeline({
      ports: this.opts.ports, hosts: this.opts.hosts, limits: this.opts.limits,
      http: this.opts.probeHeader ? { probeHeader: this.opts.probeHeader } : {}, onExchange,
    });
    const src: Source = { netns, pipeline, rings: [], gone: false, closing: null };
    this.sources.push(src);
    return src;
  }

  /** Packets, exchanges and flows so far, over every source (the live status line). */
  get progress(): { packets: number; exchanges: number; flows: number } {
    const p = { packets: 0, exchanges: 0, flows: 0 };
    for (const s of this.sources) {
      p.packets += s.pipeline.counters.packets;
      p.exchanges += s.pipeline.counters.exchanges;
      p.flows += s.pipeline.flows;
    }
    return p;
  }

  /**
   * Decode a capture file ('-' = standard input) to its end, or until `signal` aborts. A corrupt
   * or cut capture throws its TcplensError after everything before it was decoded; the caller
   * still calls stop() for the flush and the summary.
   */
  async readFile(path: string, signal: AbortSignal): Promise<void> {
    const keep = new SegmentFilter({ ports: this.opts.ports, hosts: this.opts.hosts });
    const seg = newTcpSegment();
    const writer = this.writer;
    const snaplen = this.opts.snaplen;
    const pipeline = this.addSource(null).pipeline;
    const reader = new CaptureReader((r: CaptureRecord) => {
      const data = snaplen > 0 && r.data.length > snaplen ? r.data.subarray(0, snaplen) : r.data;
      pipeline.packet(r.linkType, data, r.origLen, r.sec * 1000 + r.nsec / 1e6);
      if (writer && keep.verdict(decodeFrame(r.linkType, data, seg, r.origLen), seg).keep) {
        writer.frame(r.linkType, r.sec, r.nsec, data, r.origLen);
      }
    });
    const input = path === '-' ? process.stdin : openCapture(path);
    // A stop (signal, closed stdout) must not wait for the next chunk of a quiet pipe.
    const onAbort = () => input.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const chunk of input) {
        if (signal.aborted) break;
        reader.push(chunk as Buffer);
      }
      if (!signal.aborted) {
        const end = reader.end();
        if (end.truncatedBytes > 0) {
          throw new TcplensError('TCPLENS_ERR_PCAP', `the capture is cut short: its last ${end.truncatedBytes} bytes are not a whole record`,
            'the exchanges before the cut were decoded; a file still being written, or copied in part, ends like this');
        }
      }
    } catch (e) {
      if (signal.aborted && !(e instanceof TcplensError)) return;
      if (e instanceof TcplensError) throw e;
      throw new TcplensError('TCPLENS_ERR_PCAP', `cannot read ${path === '-' ? 'standard input' : path}: ${(e as Error).message}`, 'give a pcap or pcapng file (or - for standard input)');
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (path !== '-') input.destroy();
    }
  }

  /** Load the kernel filter and open one ring per interface (or one for all), in each namespace
   * given (or ours). One filter program serves every ring. Needs root. */
  startLive(live: LiveOptions): void {
    this.filter = HttpKernelFilter.load({ ports: this.opts.ports, hosts: this.opts.hosts, snaplen: this.opts.snaplen });
    for (const netns of live.netns?.length ? live.netns : [null]) {
      const src = this.addSource(netns);
      const onPacket = (p: RingPacket) => this.livePacket(src.pipeline, p);
      for (const iface of live.ifaces.length ? live.ifaces : [undefined]) {
        src.rings.push(PacketRing.open({ iface, filterFd: this.filter.fd, blockSize: live.blockSize, blockCount: live.blockCount,
          blockTimeoutMs: live.blockTimeoutMs, netnsPath: netns?.path }, onPacket));
      }
    }
    for (const s of this.sources) for (const r of s.rings) r.start();
    if (live.netns?.length) {
      this.watch = setInterval(() => this.checkNetns(), live.netnsCheckMs ?? 500);
      this.watch.unref();
    }
  }

  /** Kernel counters now (PACKET_STATISTICS is read, and summed, each call). */
  kernelDrops(): KernelDrops | null {
    const rings = this.sources.flatMap((s) => s.rings);
    if (!rings.length) return null;
    const k: KernelDrops = { packets: 0, drops: 0, freezes: 0, vlanInMetadata: this.vlanInMetadata };
    // A closed ring answers with its final figures: a namespace that went away still counts.
    for (const r of rings) {
      const s: PacketRingStats = r.readStats();
      k.packets += s.packets; k.drops += s.drops; k.freezes += s.freezes;
    }
    return k;
  }

  get elapsedMs(): number { return Date.now() - this.startedMs; }

  /** Close rings (what the kernel handed over is decoded first), flush open exchanges as
   * incomplete, detach and unload. Idempotent: the first call's figures are kept. */
  async stop(): Promise<HttpRunSummary> {
    if (this.stopped) return this.stopped;
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    for (const src of this.sources) await this.closeSource(src);
    const k = this.kernelDrops();
    const filter = this.filter ? this.filter.counters() : null;
    this.filter?.close();
    this.filter = null;
    this.writer?.close();
    this.stopped = { ...sumSummaries(this.sources.map((s) => s.pipeline.summary())), kernel: k, filter, written: this.writer ? this.writer.written : null };
    return this.stopped;
  }

  /** Its rings closed (their last packets decoded first; a closed ring keeps its figures), its open exchanges flushed. */
  private closeSource(src: Source): Promise<void> {
    src.closing ??= (async () => {
      for (const r of src.rings) await r.close();
      src.pipeline.flush();
    })();
    return src.closing;
  }

  /** A namespace whose path no longer opens the inode we captured in has gone (ip netns del, the
   * process of a pid ended): stop holding it (our sockets would keep it, and its devices, alive). */
  private checkNetns(): void {
    for (const src of this.sources) {
      if (src.gone || !src.netns || netnsInodeAt(src.netns.path) === src.netns.inode) continue;
      src.gone = true;
      this.netnsGone.push(src.netns);
      const ns = src.netns;
      void this.closeSource(src).then(() => {
        const left = this.sources.filter((s) => !s.gone).length;
        const err = new TcplensError('TCPLENS_ERR_NETNS_GONE',
          `network namespace ${ns.name} (inode ${ns.inode}) went away during the capture: ${src.pipeline.counters.exchanges} exchanges were seen there`,
          left ? `the capture goes on in the other ${left}` : 'nothing is left to capture; the capture ends');
        this.events.onNetnsGone?.(err, left);
      });
    }
  }

  private livePacket(pipeline: HttpPipeline, p: RingPacket): void {
    // Loopback shows each packet twice (leaving and arriving): keep the arrival, as libpcap does.
    if (p.hatype === ARPHRD_LOOPBACK && p.pktType === PACKET_OUTGOING) return;
    // The kernel filter read the frame as Ethernet; other link types (tun, ...) are not ours.
    const linkType = p.hatype === ARPHRD_ETHER || p.hatype === ARPHRD_LOOPBACK ? LINKTYPE_ETHERNET : -1;
    const timeMs = p.sec * 1000 + p.nsec / 1e6;
    if (p.vlanTci !== null) this.vlanInMetadata++;
    pipeline.packet(linkType, p.data, p.origLen, timeMs, p.vlanTci);
    if (this.writer && linkType === LINKTYPE_ETHERNET) this.writer.frame(linkType, p.sec, p.nsec, p.data, p.origLen, p.vlanTci, p.vlanTpid);
  }
}

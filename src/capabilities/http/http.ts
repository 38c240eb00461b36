// tcplens http, the plan: a capture (a file or stdin, or live AF_PACKET rings behind the kernel
// filter) feeds one HttpPipeline in arrival order; exchanges go to the caller as they complete;
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
  /** interface names; empty = every interface of the namespace */
  ifaces: string[];
  blockSize?: number;
  blockCount?: number;
  blockTimeoutMs?: number;
  netnsPath?: string;
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

export class HttpCapture {
  readonly pipeline: HttpPipeline;
  private readonly writer: CaptureFileWriter | null;
  private filter: HttpKernelFilter | null = null;
  private rings: PacketRing[] = [];
  private stopped: HttpRunSummary | null = null;
  private readonly startedMs = Date.now();
  private vlanInMetadata = 0;

  constructor(private readonly opts: HttpCaptureOptions, onExchange: (e: HttpExchange) => void) {
    this.pipeline = new HttpPipeline({
      ports: opts.ports, hosts: opts.hosts, limits: opts.limits,
      http: opts.probeHeader ? { probeHeader: opts.probeHeader } : {}, onExchange,
    });
    this.writer = opts.write ? new CaptureFileWriter(opts.write, opts.snaplen || undefined) : null;
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
    const reader = new CaptureReader((r: CaptureRecord) => {
      const data = snaplen > 0 && r.data.length > snaplen ? r.data.subarray(0, snaplen) : r.data;
      this.pipeline.packet(r.linkType, data, r.origLen, r.sec * 1000 + r.nsec / 1e6);
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

  /** Load the kernel filter and open one ring per interface (or one for all). Needs root. */
  startLive(live: LiveOptions): void {
    this.filter = HttpKernelFilter.load({ ports: this.opts.ports, hosts: this.opts.hosts, snaplen: this.opts.snaplen });
    const onPacket = (p: RingPacket) => this.livePacket(p);
    for (const iface of live.ifaces.length ? live.ifaces : [undefined]) {
      this.rings.push(PacketRing.open({ iface, filterFd: this.filter.fd, blockSize: live.blockSize, blockCount: live.blockCount,
        blockTimeoutMs: live.blockTimeoutMs, netnsPath: live.netnsPath }, onPacket));
    }
    for (const r of this.rings) r.start();
  }

  /** Kernel counters now (PACKET_STATISTICS is read, and summed, each call). */
  kernelDrops(): KernelDrops | null {
    if (!this.rings.length) return null;
    const k: KernelDrops = { packets: 0, drops: 0, freezes: 0, vlanInMetadata: this.vlanInMetadata };
    for (const r of this.rings) {
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
    const k: KernelDrops | null = this.rings.length ? { packets: 0, drops: 0, freezes: 0, vlanInMetadata: 0 } : null;
    for (const r of this.rings) {
      const s = await r.close();
      k!.packets += s.packets; k!.drops += s.drops; k!.freezes += s.freezes;
    }
    this.rings = [];
    if (k) k.vlanInMetadata = this.vlanInMetadata;
    this.pipeline.flush();
    const filter = this.filter ? this.filter.counters() : null;
    this.filter?.close();
    this.filter = null;
    this.writer?.close();
    this.stopped = { ...this.pipeline.summary(), kernel: k, filter, written: this.writer ? this.writer.written : null };
    return this.stopped;
  }

  private livePacket(p: RingPacket): void {
    // Loopback shows each packet twice (leaving and arriving): keep the arrival, as libpcap does.
    if (p.hatype === ARPHRD_LOOPBACK && p.pktType === PACKET_OUTGOING) return;
    // The kernel filter read the frame as Ethernet; other link types (tun, ...) are not ours.
    const linkType = p.hatype === ARPHRD_ETHER || p.hatype === ARPHRD_LOOPBACK ? LINKTYPE_ETHERNET : -1;
    const timeMs = p.sec * 1000 + p.nsec / 1e6;
    if (p.vlanTci !== null) this.vlanInMetadata++;
    this.pipeline.packet(linkType, p.data, p.origLen, timeMs, p.vlanTci);
    if (this.writer && linkType === LINKTYPE_ETHERNET) this.writer.frame(linkType, p.sec, p.nsec, p.data, p.origLen, p.vlanTci, p.vlanTpid);
  }
}

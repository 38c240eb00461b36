// packets -> segments -> filter -> reassembly -> HTTP/1 -> exchanges, for a capture file or a live
// ring alike: feed record()/packet() in arrival order, call flush() at the end of input (or on a
// signal) to get open exchanges out as incomplete. Counters say what was skipped and why.
import type { Cidr } from './addr.js';
import { recordTimeMs, type CaptureRecord } from './capture-record.js';
import { DEFAULT_HTTP1_OPTIONS, Http1Connection, newHttp1Counters, type Http1Counters, type Http1Options, type HttpExchange } from './http1.js';
import { decodeFrame, newTcpSegment, type SkipReason } from './packet.js';
import { SegmentFilter } from './packet-filter.js';
import { DEFAULT_REASSEMBLY_LIMITS, TcpReassembler, type ReassemblyCounters, type ReassemblyLimits } from './tcp-reassembly.js';

export interface HttpPipelineOptions {
  ports: readonly number[];
  hosts?: readonly Cidr[];
  limits?: Partial<ReassemblyLimits>;
  http?: Partial<Http1Options>;
  onExchange: (e: HttpExchange) => void;
}

export interface HttpPipelineCounters {
  packets: number;
  bytes: number;
  /** Frames the decoder skipped, by reason. */
  skipped: Partial<Record<SkipReason, number>>;
  /** TCP segments the port/host filter dropped. */
  filteredOut: number;
  segments: number;
  badTcpOptions: number;
  exchanges: number;
  incompleteExchanges: number;
  reassembly: ReassemblyCounters;
  http: Http1Counters;
}

/** The end-of-run figures `tcplens http` prints (kernel drops are the capture's to add). */
export interface HttpPipelineSummary {
  packets: number;
  bytes: number;
  skipped: number;
  filtered_out: number;
  flows: number;
  exchanges: number;
  incomplete: number;
  parse_errors: number;
  /** Connections evicted from a full table plus holes given up at a memory limit. */
  evictions: number;
  gaps: number;
}

/** How often (in packet time) idle flows are looked for. */
const EXPIRE_EVERY_MS = 1000;

export class HttpPipeline {
  readonly counters: HttpPipelineCounters;
  private readonly seg = newTcpSegment();
  private readonly filter: SegmentFilter;
  private readonly reassembler: TcpReassembler;
  private lastExpireMs = -Infinity;
  private lastMs = 0;

  constructor(opts: HttpPipelineOptions) {
    this.filter = new SegmentFilter({ ports: opts.ports, hosts: opts.hosts });
    const http: Http1Options = { ...DEFAULT_HTTP1_OPTIONS, ...opts.http };
    const httpCounters = newHttp1Counters();
    const emit = (e: HttpExchange) => {
      this.counters.exchanges++;
      if (e.error !== null) this.counters.incompleteExchanges++;
      opts.onExchange(e);
    };
    const serverPorts = new Set(opts.ports);
    this.reassembler = new TcpReassembler((flow) => new Http1Connection(flow, emit, httpCounters, http),
      { ...DEFAULT_REASSEMBLY_LIMITS, ...opts.limits }, (p) => serverPorts.has(p));
    this.counters = {
      packets: 0, bytes: 0, skipped: {}, filteredOut: 0, segments: 0, badTcpOptions: 0, exchanges: 0, incompleteExchanges: 0,
      reassembly: this.reassembler.counters, http: httpCounters,
    };
  }

  /** Flows tracked now and bytes waiting in reassembly: what memory the pipeline holds. */
  get flows(): number { return this.reassembler.flowCount; }
  get pendingBytes(): number { return this.reassembler.pendingBytes; }

  record(r: CaptureRecord): void {
    this.packet(r.linkType, r.data, r.origLen, recordTimeMs(r.sec, r.nsec));
  }

  /** One frame; `strippedVlan` as decodeFrame takes it (live capture with VLAN offload). */
  packet(linkType: number, frame: Uint8Array, origLen: number, timeMs: number, strippedVlan: number | null = null): void {
    const c = this.counters;
    c.packets++;
    c.bytes += origLen;
    this.lastMs = timeMs;
    const seg = this.seg;
    const decoded = decodeFrame(linkType, frame, seg, origLen, strippedVlan);
    if (decoded !== 'tcp') { c.skipped[decoded] = (c.skipped[decoded] ?? 0) + 1; return; }
    if (!this.filter.portMatches(seg) || !this.filter.hostMatches(seg)) { c.filteredOut++; return; }
    c.segments++;
    if (seg.badOptions) c.badTcpOptions++;
    this.reassembler.segment(seg, timeMs);
    if (timeMs - this.lastExpireMs >= EXPIRE_EVERY_MS) {
      this.lastExpireMs = timeMs;
      this.reassembler.expire(timeMs);
    }
  }

  summary(): HttpPipelineSummary {
    const c = this.counters;
    return {
      packets: c.packets, bytes: c.bytes, skipped: Object.values(c.skipped).reduce((a, b) => a + (b ?? 0), 0), filtered_out: c.filteredOut,
      flows: c.reassembly.flows, exchanges: c.exchanges, incomplete: c.incompleteExchanges, parse_errors: c.http.parseErrors,
      evictions: c.reassembly.evictedFlows + c.reassembly.holesGivenUp, gaps: c.reassembly.gaps,
    };
  }

  /** End of input: every open connection closes; its unanswered requests come out incomplete. */
  flush(): void {
    this.reassembler.flush(this.lastMs);
  }
}

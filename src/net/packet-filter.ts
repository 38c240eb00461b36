// The port/host filter, with exactly the semantics of the kernel socket filter (the shared case
// table test/cases/http-filter-cases.ts holds both to them):
// - a frame is kept only if decodeFrame() finds a TCP segment in it (through at most two VLAN
//   tags and one IPIP or IPv6-in-IPv4 tunnel; fragments and the other skip reasons are dropped);
// - and its source or destination port is in the port set (an empty set keeps every port);
// - and, if host CIDRs are given, the source or destination address of the INNER (innermost) IP
//   header is in one of them; outer tunnel addresses do not count.
import { cidrContains, type Cidr } from './addr.js';
import { decodeFrame, newTcpSegment, type DecodeResult, type TcpSegment } from './packet.js';

export interface FilterSpec {
  ports: readonly number[];
  hosts?: readonly Cidr[];
}

export type FilterVerdict = { keep: true; reason: 'match' } | { keep: false; reason: DecodeResult | 'port' | 'host' };

export class SegmentFilter {
  private readonly ports: Uint8Array = new Uint8Array(65536);
  private readonly anyPort: boolean;
  private readonly hosts: readonly Cidr[];
  private readonly scratch = new Uint8Array(16);

  constructor(spec: FilterSpec) {
    for (const p of spec.ports) this.ports[p] = 1;
    this.anyPort = spec.ports.length === 0;
    this.hosts = spec.hosts ?? [];
  }

  portMatches(seg: TcpSegment): boolean {
    return this.anyPort || this.ports[seg.srcPort] === 1 || this.ports[seg.dstPort] === 1;
  }

  hostMatches(seg: TcpSegment): boolean {
    if (this.hosts.length === 0) return true;
    return this.addrIn(seg, seg.srcOff) || this.addrIn(seg, seg.dstOff);
  }

  /** Why a decoded segment is kept or not; `decoded` is decodeFrame's answer for it. */
  verdict(decoded: DecodeResult, seg: TcpSegment): FilterVerdict {
    if (decoded !== 'tcp') return { keep: false, reason: decoded };
    if (!this.portMatches(seg)) return { keep: false, reason: 'port' };
    if (!this.hostMatches(seg)) return { keep: false, reason: 'host' };
    return { keep: true, reason: 'match' };
  }

  /** The whole filter on one frame, as the kernel program sees it. */
  judgeFrame(linkType: number, frame: Uint8Array, seg: TcpSegment = newTcpSegment()): FilterVerdict {
    return this.verdict(decodeFrame(linkType, frame, seg), seg);
  }

  private addrIn(seg: TcpSegment, at: number): boolean {
    const n = seg.family === 4 ? 4 : 16;
    this.scratch.fill(0);
    this.scratch.set(seg.frame.subarray(at, at + n));
    for (const c of this.hosts) if (cidrContains(c, seg.family, this.scratch)) return true;
    return false;
  }
}

// The port/host filter, with exactly the semantics of the kernel socket filter (the shared case
// table test/cases/http-filter-cases.ts holds both to them). A frame is KEPT when all of this holds
// (decodeFrame in packet.ts is the reference walk; "available" = bytes from that header to the
// frame's end):
//  1. Ethernet header (14 bytes). While the ethertype is 0x8100 or 0x88a8: one more tag of 4
//     bytes; at most 2 tags in all, counting a tag stripped into metadata (skb->vlan_present) as
//     the outermost; a third one drops.
//  2. Ethertype 0x0800 -> IPv4, 0x86dd -> IPv6, anything else drops.
//  3. IPv4: 20 bytes available, version 4, IHL >= 5, total length >= IHL*4, IHL*4 and total
//     length <= available; (frag_off & 0x3fff) != 0 (MF or an offset) drops. Protocol 4 (IPIP)
//     or 41 (IPv6-in-IPv4) in the OUTER header: parse the inner header the same way, bounded by
//     the outer total length; a 4 or 41 in an inner header drops. Protocol other than 6 drops.
//  4. IPv6: 40 bytes available, version 6, payload length != 0 and 40 + payload length <=
//     available. Walk at most 8 extension headers among 0, 43, 60 (len (n+1)*8), 51 (len
//     (n+2)*4) and 44 (8 bytes; fragment offset or M set drops, an atomic fragment passes);
//     each must fit in the payload; a 9th drops; next header 4 or 41 drops (no tunnels inside
//     IPv6); anything but 6 drops.
//  5. TCP: 20 bytes within the IP payload, data offset >= 5, data offset*4 <= IP payload length.
//  6. Source or destination port in the port set (an empty set keeps every port).
//  7. If host CIDRs are given: the source or destination address of the INNER (innermost) IP
//     header is in one of them, same family; outer tunnel addresses do not count.
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

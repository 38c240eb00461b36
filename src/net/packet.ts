// Frame -> TCP segment: link header (Ethernet, Linux cooked, raw IP), up to two VLAN tags (802.1Q,
// QinQ), IPv4 with options or IPv6 with extension headers, one level of tunnel (IPv4-in-IPv4 and
// IPv6-in-IPv4 inside an outer IPv4), TCP. The decoder writes into a caller-owned TcpSegment and
// answers a reason: 'tcp' or why the frame is skipped. It never throws on frame content, and it
// formats nothing: addresses are offsets into the frame, so frames the filter drops cost little.
// The same walk is what the kernel socket filter does (see packet-filter.ts for the contract).
import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW } from './link-type.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
/** Tags deeper than QinQ are not followed (the kernel filter has the same bound). */
export const MAX_VLAN_TAGS = 2;
/** IPv6 extension headers walked before giving up (the kernel filter's loop bound). */
export const MAX_IPV6_EXT_HEADERS = 8;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export type SkipReason =
  | 'truncated'          // the frame ends before a header does (cut by a snaplen or broken)
  | 'not_ip'             // an ethertype or IP version we do not carry (ARP, LLDP, ...)
  | 'not_tcp'            // IP, but UDP, ICMP, ...
  | 'fragment'           // an IP fragment: no reassembly of fragments (counted, skipped)
  | 'bad_ip_header'      // IHL < 5, total length shorter than the header, jumbogram, ...
  | 'bad_ip_length'      // total length claims more bytes than the frame has (not a snaplen cut)
  | 'bad_tcp_header'     // data offset < 5 or past the segment
  | 'too_many_vlan_tags'
  | 'too_many_ext_headers'
  | 'nested_tunnel'      // a tunnel inside a tunnel
  | 'unsupported_tunnel' // IPv4/IPv6 inside IPv6 (not a tunnel kind we follow)
  | 'unsupported_link';
export type DecodeResult = 'tcp' | SkipReason;

export type TunnelType = 'ipip' | 'sit';

/** A decoded segment. Address fields are byte offsets into `frame` (4 or 16 bytes by family). */
export interface TcpSegment {
  frame: Uint8Array;
  vlan: number | null;
  vlanInner: number | null;
  tunnel: TunnelType | null;
  /** Offsets of the outer IPv4 source and destination when tunnelled. */
  outerSrcOff: number;
  outerDstOff: number;
  family: 4 | 6;
  srcOff: number;
  dstOff: number;
  ttl: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payloadOff: number;
  payloadLen: number;
  /** Payload bytes the IP header promises but the capture does not hold (snaplen). */
  payloadMissing: number;
  /** TCP options that run past the header or have silly lengths; the segment is still used. */
  badOptions: boolean;
}

export function newTcpSegment(): TcpSegment {
  return {
    frame: new Uint8Array(0), vlan: null, vlanInner: null, tunnel: null, outerSrcOff: 0, outerDstOff: 0,
    family: 4, srcOff: 0, dstOff: 0, ttl: 0, srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0,
    payloadOff: 0, payloadLen: 0, payloadMissing: 0, badOptions: false,
  };
}

const be16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const be32 = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/**
 * Decodes one frame. `origLen` is the length on the wire: when it exceeds frame.length the
 * capture was cut, and lengths past the end are a snaplen cut rather than a bogus header.
 * `strippedVlan` is a tag the kernel took out of the frame into packet metadata (AF_PACKET
 * gives it in tpacket3_hdr.hv1 with TP_STATUS_VLAN_VALID): it is the outermost tag and counts
 * toward MAX_VLAN_TAGS, as skb->vlan_present does in the kernel filter.
 */
export function decodeFrame(linkType: number, frame: Uint8Array, seg: TcpSegment, origLen = frame.length, strippedVlan: number | null = null): DecodeResult {
  seg.frame = frame;
  seg.vlan = null;
  seg.vlanInner = null;
  seg.tunnel = null;
  seg.badOptions = false;
  const cut = origLen > frame.length;
  let off: number;
  let ethertype: number;
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      if (frame.length < 14) return 'truncated';
      ethertype = be16(frame, 12);
      off = 14;
      break;
    case LINKTYPE_LINUX_SLL:
      if (frame.length < 16) return 'truncated';
      ethertype = be16(frame, 14);
      off = 16;
      break;
    case LINKTYPE_LINUX_SLL2:
      if (frame.length < 20) return 'truncated';
      ethertype = be16(frame, 0);
      off = 20;
      break;
    case LINKTYPE_RAW: case LINKTYPE_IPV4: case LINKTYPE_IPV6:
      if (frame.length < 1) return 'truncated';
      ethertype = frame[0] >> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
      off = 0;
      break;
    default:
      return 'unsupported_link';
  }
  let tags = 0;
  if (strippedVlan !== null) { seg.vlan = strippedVlan & 0x0fff; tags = 1; }
  while (ethertype === ETHERTYPE_VLAN || ethertype === ETHERTYPE_QINQ) {
    if (++tags > MAX_VLAN_TAGS) return 'too_many_vlan_tags';
    if (frame.length < off + 4) return 'truncated';
    const vid = be16(frame, off) & 0x0fff;
    if (tags === 1) seg.vlan = vid; else seg.vlanInner = vid;
    ethertype = be16(frame, off + 2);
    off += 4;
  }
  if (ethertype === ETHERTYPE_IPV4) return ipv4(frame, off, frame.length, seg, cut, false);
  if (ethertype === ETHERTYPE_IPV6) return ipv6(frame, off, frame.length, seg, cut, false);
  return 'not_ip';
}

function ipv4(b: Uint8Array, off: number, end: number, seg: TcpSegment, cut: boolean, inner: boolean): DecodeResult {
  if (end - off < 20) return 'truncated';
  if (b[off] >> 4 !== 4) return 'not_ip';
  const ihl = (b[off] & 0x0f) * 4;
  const total = be16(b, off + 2);
  if (ihl < 20 || total < ihl) return 'bad_ip_header';
  if (end - off < ihl) return 'truncated';
  let ipEnd = off + total;
  let missing = 0;
  if (ipEnd > end) {
    if (!cut) return 'bad_ip_length';
    missing = ipEnd - end;
    ipEnd = end;
  }
  const fragment = be16(b, off + 6);
  if ((fragment & 0x3fff) !== 0) return 'fragment';
  const proto = b[off + 9];
  if (proto === IPPROTO_IPIP || proto === IPPROTO_IPV6) {
    if (inner) return 'nested_tunnel';
    seg.tunnel = proto === IPPROTO_IPIP ? 'ipip' : 'sit';
    seg.outerSrcOff = off + 12;
    seg.outerDstOff = off + 16;
    return proto === IPPROTO_IPIP ? ipv4(b, off + ihl, ipEnd, seg, cut, true) : ipv6(b, off + ihl, ipEnd, seg, cut, true);
  }
  if (proto !== IPPROTO_TCP) return 'not_tcp';
  seg.family = 4;
  seg.srcOff = off + 12;
  seg.dstOff = off + 16;
  seg.ttl = b[off + 8];
  return tcp(b, off + ihl, ipEnd, missing, seg);
}

function ipv6(b: Uint8Array, off: number, end: number, seg: TcpSegment, cut: boolean, inner: boolean): DecodeResult {
  if (end - off < 40) return 'truncated';
  if (b[off] >> 4 !== 6) return 'not_ip';
  const payloadLen = be16(b, off + 4);
  if (payloadLen === 0) return 'bad_ip_header'; // jumbogram or empty: nothing for us
  let ipEnd = off + 40 + payloadLen;
  let missing = 0;
  if (ipEnd > end) {
    if (!cut) return 'bad_ip_length';
    missing = ipEnd - end;
    ipEnd = end;
  }
  seg.family = 6;
  seg.srcOff = off + 8;
  seg.dstOff = off + 24;
  seg.ttl = b[off + 7];
  let next = b[off + 6];
  let at = off + 40;
  for (let n = 0; ; n++) {
    if (next === IPPROTO_TCP) return tcp(b, at, ipEnd, missing, seg);
    if (next === IPPROTO_IPIP || next === IPPROTO_IPV6) return inner ? 'nested_tunnel' : 'unsupported_tunnel';
    const isExt = next === 0 || next === 43 || next === 60 || next === 44 || next === 51;
    if (!isExt) return 'not_tcp';
    if (n >= MAX_IPV6_EXT_HEADERS) return 'too_many_ext_headers';
    if (ipEnd - at < 8) return at + 8 > off + 40 + payloadLen ? 'bad_ip_header' : 'truncated';
    let len: number;
    if (next === 44) {
      // A fragment header with offset 0 and no more fragments is an atomic fragment: whole.
      if ((be16(b, at + 2) & 0xfff9) !== 0) return 'fragment';
      len = 8;
    } else if (next === 51) {
      len = (b[at + 1] + 2) * 4;
    } else {
      len = (b[at + 1] + 1) * 8;
    }
    if (at + len > off + 40 + payloadLen) return 'bad_ip_header';
    next = b[at];
    at += len;
  }
}

function tcp(b: Uint8Array, off: number, ipEnd: number, missing: number, seg: TcpSegment): DecodeResult {
  if (ipEnd - off < 20) return missing > 0 ? 'truncated' : 'bad_tcp_header';
  const doff = (b[off + 12] >> 4) * 4;
  if (doff < 20) return 'bad_tcp_header';
  if (off + doff > ipEnd) return missing > 0 ? 'truncated' : 'bad_tcp_header';
  seg.srcPort = be16(b, off);
  seg.dstPort = be16(b, off + 2);
  seg.seq = be32(b, off + 4);
  seg.ack = be32(b, off + 8);
  seg.flags = b[off + 13];
  seg.window = be16(b, off + 14);
  seg.payloadOff = off + doff;
  seg.payloadLen = ipEnd - (off + doff);
  seg.payloadMissing = missing;
  if (doff > 20) seg.badOptions = !tcpOptionsWellFormed(b, off + 20, off + doff);
  return 'tcp';
}

/** Walks TCP options only to judge them; tcplens needs none of their values for HTTP. */
export function tcpOptionsWellFormed(b: Uint8Array, at: number, end: number): boolean {
  while (at < end) {
    const kind = b[at];
    if (kind === 0) return true;
    if (kind === 1) { at++; continue; }
    if (at + 1 >= end) return false;
    const len = b[at + 1];
    if (len < 2 || at + len > end) return false;
    at += len;
  }
  return true;
}

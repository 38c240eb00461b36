// Pure builder of Ethernet frames carrying TCP: VLAN/QinQ tags, IPv4 (options, fragments) or IPv6
// (extension headers), IPIP or IPv6-in-IPv4 tunnels, TCP options, bogus lengths on request.
// Shared by the unit tests, the filter case table (which the kernel filter's BPF_PROG_TEST_RUN
// test also uses) and the throughput fixture. Checksums are correct, so tcpdump and Wireshark
// show the frames without complaint.
import { parseAddr } from '../../src/net/addr.js';

export interface Ipv6Ext { type: 0 | 43 | 44 | 51 | 60; /** fragment header: offset in 8-byte units and M flag */ fragOffset?: number; more?: boolean; /** length in 8-octet units beyond the first (0 = 8 bytes) */ lenUnits?: number }

export interface FrameSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  /** TCP flags byte; default ACK|PSH (0x18). */
  flags?: number;
  window?: number;
  ttl?: number;
  payload?: Uint8Array | string;
  /** VLAN IDs, outermost first; two make QinQ. */
  vlans?: number[];
  /** TPIDs for the tags; default 0x88a8 outer and 0x8100 inner for QinQ, 0x8100 for one tag. */
  tpids?: number[];
  ethertype?: number;
  tunnel?: { type: 'ipip' | 'sit'; src: string; dst: string };
  /** IPv4 options (padded to 4 bytes). */
  ipOptions?: number[];
  ipv6Ext?: Ipv6Ext[];
  /** IPv4 fragment: offset in 8-byte units and the MF flag. */
  fragment?: { offset: number; more: boolean };
  /** Overrides the inner IP protocol / IPv6 next header after the extension headers (17 = UDP). */
  protocol?: number;
  /** Added to the inner IP total (IPv4) or payload (IPv6) length, to make it lie. */
  ipLengthDelta?: number;
  /** Overrides the IPv4 IHL field (in 32-bit words). */
  ihlWords?: number;
  tcpOptions?: number[];
  /** Overrides the TCP data offset field (in 32-bit words). */
  dataOffsetWords?: number;
}

const MAC_DST = [0x02, 0, 0, 0, 0, 0x02];
const MAC_SRC = [0x02, 0, 0, 0, 0, 0x01];

function addrBytes(text: string): { family: 4 | 6; bytes: Uint8Array } {
  const a = parseAddr(text);
  if (!a) throw new Error(`frames: bad address ${text}`);
  return { family: a.family, bytes: a.family === 4 ? a.bytes.subarray(0, 4) : a.bytes };
}

function sum16(b: Uint8Array, acc = 0): number {
  for (let i = 0; i + 1 < b.length; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (b.length % 2) acc += b[b.length - 1] << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 65536);
  return ~acc & 0xffff;
}

function put16(b: Uint8Array, at: number, v: number): void { b[at] = (v >> 8) & 0xff; b[at + 1] = v & 0xff; }
function put32(b: Uint8Array, at: number, v: number): void { put16(b, at, (v >>> 16) & 0xffff); put16(b, at + 2, v & 0xffff); }

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function tcpSegment(spec: FrameSpec, src: Uint8Array, dst: Uint8Array): Uint8Array {
  const payload = typeof spec.payload === 'string' ? new TextEncoder().encode(spec.payload) : spec.payload ?? new Uint8Array(0);
  const opts = spec.tcpOptions ?? [];
  const optLen = (opts.length + 3) & ~3;
  const hdr = new Uint8Array(20 + optLen);
  put16(hdr, 0, spec.sport);
  put16(hdr, 2, spec.dport);
  put32(hdr, 4, spec.seq ?? 1000);
  put32(hdr, 8, spec.ack ?? 0);
  hdr[12] = (spec.dataOffsetWords ?? (20 + optLen) / 4) << 4;
  hdr[13] = spec.flags ?? 0x18;
  put16(hdr, 14, spec.window ?? 65535);
  hdr.set(opts, 20);
  const seg = concat([hdr, payload]);
  const pseudo = new Uint8Array(src.length * 2 + 8);
  pseudo.set(src, 0);
  pseudo.set(dst, src.length);
  put32(pseudo, src.length * 2, seg.length);
  pseudo[src.length * 2 + 7] = 6;
  put16(seg, 16, fold(sum16(seg, sum16(pseudo))));
  return seg;
}

function ipv4Packet(src: Uint8Array, dst: Uint8Array, proto: number, body: Uint8Array, spec: FrameSpec, inner: boolean): Uint8Array {
  const opts = inner ? spec.ipOptions ?? [] : [];
  const optLen = (opts.length + 3) & ~3;
  const h = new Uint8Array(20 + optLen);
  h[0] = 0x40 | (inner && spec.ihlWords !== undefined ? spec.ihlWords : (20 + optLen) / 4);
  put16(h, 2, h.length + body.length + (inner ? spec.ipLengthDelta ?? 0 : 0));
  put16(h, 4, 0x1234);
  if (inner && spec.fragment) put16(h, 6, (spec.fragment.more ? 0x2000 : 0) | spec.fragment.offset);
  else put16(h, 6, 0x4000); // DF
  h[8] = inner ? spec.ttl ?? 64 : 64;
  h[9] = proto;
  h.set(src, 12);
  h.set(dst, 16);
  h.set(opts, 20);
  put16(h, 10, fold(sum16(h)));
  return concat([h, body]);
}

function ipv6Packet(src: Uint8Array, dst: Uint8Array, proto: number, body: Uint8Array, spec: FrameSpec): Uint8Array {
  const exts = spec.ipv6Ext ?? [];
  const parts: Uint8Array[] = [];
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i];
    const next = i + 1 < exts.length ? exts[i + 1].type : proto;
    let h: Uint8Array;
    if (e.type === 44) {
      h = new Uint8Array(8);
      put16(h, 2, ((e.fragOffset ?? 0) << 3) | (e.more ? 1 : 0));
      put32(h, 4, 0xabcd);
    } else if (e.type === 51) {
      h = new Uint8Array(12 + 8 * (e.lenUnits ?? 0));
      h[1] = h.length / 4 - 2;
    } else {
      h = new Uint8Array(8 * ((e.lenUnits ?? 0) + 1));
      h[1] = e.lenUnits ?? 0;
      if (e.type !== 43) { h[2] = 1; h[3] = h.length - 4; } // one PadN option fills it
      else { h[2] = 0; h[3] = 0; } // routing type 0, segments left 0: passes through
    }
    h[0] = next;
    parts.push(h);
  }
  const ext = concat(parts);
  const h = new Uint8Array(40);
  h[0] = 0x60;
  put16(h, 4, ext.length + body.length + (spec.ipLengthDelta ?? 0));
  h[6] = exts.length ? exts[0].type : proto;
  h[7] = spec.ttl ?? 64;
  h.set(src, 8);
  h.set(dst, 24);
  return concat([h, ext, body]);
}

/** An Ethernet frame for `spec`. */
export function buildFrame(spec: FrameSpec): Uint8Array {
  const s = addrBytes(spec.src);
  const d = addrBytes(spec.dst);
  if (s.family !== d.family) throw new Error('frames: source and destination families differ');
  const body = tcpSegment(spec, s.bytes, d.bytes);
  const proto = spec.protocol ?? 6;
  let ip = s.family === 4 ? ipv4Packet(s.bytes, d.bytes, proto, body, spec, true) : ipv6Packet(s.bytes, d.bytes, proto, body, spec);
  let ethertype = s.family === 4 ? 0x0800 : 0x86dd;
  if (spec.tunnel) {
    const os = addrBytes(spec.tunnel.src);
    const od = addrBytes(spec.tunnel.dst);
    ip = ipv4Packet(os.bytes, od.bytes, s.family === 4 ? 4 : 41, ip, spec, false);
    ethertype = 0x0800;
  }
  if (spec.ethertype !== undefined) ethertype = spec.ethertype;
  const vlans = spec.vlans ?? [];
  const tpids = spec.tpids ?? (vlans.length >= 2 ? [0x88a8, ...vlans.slice(1).map(() => 0x8100)] : vlans.map(() => 0x8100));
  const eth = new Uint8Array(14 + 4 * vlans.length);
  eth.set(MAC_DST, 0);
  eth.set(MAC_SRC, 6);
  let at = 12;
  vlans.forEach((vid, i) => { put16(eth, at, tpids[i]); put16(eth, at + 2, vid); at += 4; });
  put16(eth, at, ethertype);
  return concat([eth, ip]);
}

// Frames and the keep/drop verdict that BOTH the user-space filter (src/net/packet-filter.ts) and
// the kernel socket filter of `tcplens http` must give. Frames are Ethernet with in-band tags; a
// test run through BPF_PROG_TEST_RUN feeds them as they are (see KERNEL-NOTES: the socket filter
// sees data from the IP header, so the kernel test prepends the link header as the notes say).
// `reason` is the user-space reason; the kernel only has to agree on `keep`.
import { buildFrame, type FrameSpec } from '../helpers/frames.js';

export interface HttpFilterCase {
  name: string;
  frame: Uint8Array;
  ports: number[];
  hosts?: string[];
  keep: boolean;
  reason: string;
}

const v4: FrameSpec = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, payload: 'GET / HTTP/1.1\r\n\r\n' };
const v6: FrameSpec = { src: 'fd00::1', dst: 'fd00::2', sport: 40000, dport: 80, payload: 'GET / HTTP/1.1\r\n\r\n' };
const f = (over: Partial<FrameSpec>, base: FrameSpec = v4) => buildFrame({ ...base, ...over });
const cut = (frame: Uint8Array, n: number) => frame.slice(0, n);

export const httpFilterCases: HttpFilterCase[] = [
  { name: 'IPv4 to the port', frame: f({}), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv4 from the port (a response)', frame: f({ sport: 80, dport: 40000 }), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv4 other port', frame: f({ dport: 8080 }), ports: [80], keep: false, reason: 'port' },
  { name: 'one of several ports', frame: f({ dport: 8443 }), ports: [80, 8443], keep: true, reason: 'match' },
  { name: 'no ports given keeps every TCP port', frame: f({ dport: 5432 }), ports: [], keep: true, reason: 'match' },
  { name: 'IPv4 with options (IHL 7)', frame: f({ ipOptions: [0x94, 4, 0, 0, 1, 1, 1, 0] }), ports: [80], keep: true, reason: 'match' },
  { name: 'TCP with options (MSS, SACK-perm, TS, WS)', frame: f({ tcpOptions: [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7] }), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv6 to the port', frame: f({}, v6), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv6 other port', frame: f({ dport: 81 }, v6), ports: [80], keep: false, reason: 'port' },
  { name: 'IPv6 hop-by-hop, routing, destination options', frame: f({ ipv6Ext: [{ type: 0 }, { type: 43 }, { type: 60, lenUnits: 1 }] }, v6), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv6 atomic fragment header (offset 0, M=0)', frame: f({ ipv6Ext: [{ type: 44 }] }, v6), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv6 first fragment (M=1)', frame: f({ ipv6Ext: [{ type: 44, more: true }] }, v6), ports: [80], keep: false, reason: 'fragment' },
  { name: 'IPv6 later fragment', frame: f({ ipv6Ext: [{ type: 44, fragOffset: 100 }] }, v6), ports: [80], keep: false, reason: 'fragment' },
  { name: 'IPv6 nine extension headers (past the bound of 8)', frame: f({ ipv6Ext: Array(9).fill({ type: 60 }) }, v6), ports: [80], keep: false, reason: 'too_many_ext_headers' },
  { name: 'IPv6 eight extension headers (at the bound)', frame: f({ ipv6Ext: Array(8).fill({ type: 60 }) }, v6), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv6 UDP to the port', frame: f({ protocol: 17 }, v6), ports: [80], keep: false, reason: 'not_tcp' },
  { name: '802.1Q tag', frame: f({ vlans: [100] }), ports: [80], keep: true, reason: 'match' },
  { name: '802.1Q tag, other port', frame: f({ vlans: [100], dport: 22 }), ports: [80], keep: false, reason: 'port' },
  { name: 'QinQ (0x88a8 then 0x8100)', frame: f({ vlans: [200, 100] }), ports: [80], keep: true, reason: 'match' },
  { name: 'double 0x8100 tags', frame: f({ vlans: [200, 100], tpids: [0x8100, 0x8100] }), ports: [80], keep: true, reason: 'match' },
  { name: 'QinQ carrying IPv6', frame: f({ vlans: [200, 100] }, v6), ports: [80], keep: true, reason: 'match' },
  { name: 'three tags (past the bound of 2)', frame: f({ vlans: [1, 2, 3], tpids: [0x88a8, 0x8100, 0x8100] }), ports: [80], keep: false, reason: 'too_many_vlan_tags' },
  { name: 'IPIP (IPv4 in IPv4) to the port', frame: f({ tunnel: { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.2' } }), ports: [80], keep: true, reason: 'match' },
  { name: 'IPIP, inner port differs', frame: f({ tunnel: { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.2' }, dport: 443 }), ports: [80], keep: false, reason: 'port' },
  { name: 'IPIP inside a VLAN tag', frame: f({ vlans: [7], tunnel: { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.2' } }), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv6 in IPv4 (protocol 41)', frame: f({ tunnel: { type: 'sit', src: '192.168.0.1', dst: '192.168.0.2' } }, v6), ports: [80], keep: true, reason: 'match' },
  { name: 'IPIP carrying UDP', frame: f({ tunnel: { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.2' }, protocol: 17 }), ports: [80], keep: false, reason: 'not_tcp' },
  { name: 'IPv4 UDP', frame: f({ protocol: 17 }), ports: [80], keep: false, reason: 'not_tcp' },
  { name: 'ARP ethertype', frame: f({ ethertype: 0x0806 }), ports: [80], keep: false, reason: 'not_ip' },
  { name: 'IPv4 first fragment (MF)', frame: f({ fragment: { offset: 0, more: true } }), ports: [80], keep: false, reason: 'fragment' },
  { name: 'IPv4 later fragment', frame: f({ fragment: { offset: 185, more: false } }), ports: [80], keep: false, reason: 'fragment' },
  { name: 'IPv4 IHL 4 (bogus)', frame: f({ ihlWords: 4 }), ports: [80], keep: false, reason: 'bad_ip_header' },
  { name: 'IPv4 IHL 15 past the packet', frame: f({ ihlWords: 15, payload: '' }), ports: [80], keep: false, reason: 'bad_ip_header' },
  { name: 'IPv4 total length past the frame', frame: f({ ipLengthDelta: 100 }), ports: [80], keep: false, reason: 'bad_ip_length' },
  { name: 'IPv4 total length shorter than the TCP header', frame: f({ ipLengthDelta: -30 }), ports: [80], keep: false, reason: 'bad_tcp_header' },
  { name: 'IPv4 total length shorter: Ethernet padding is not payload', frame: f({ ipLengthDelta: -5 }), ports: [80], keep: true, reason: 'match' },
  { name: 'IPv6 payload length past the frame', frame: f({ ipLengthDelta: 8 }, v6), ports: [80], keep: false, reason: 'bad_ip_length' },
  { name: 'TCP data offset 4 (bogus)', frame: f({ dataOffsetWords: 4 }), ports: [80], keep: false, reason: 'bad_tcp_header' },
  { name: 'TCP data offset 15 past the segment', frame: f({ dataOffsetWords: 15, payload: '' }), ports: [80], keep: false, reason: 'bad_tcp_header' },
  { name: 'TCP option running past the header is still a segment', frame: f({ tcpOptions: [1, 1, 8, 10, 0, 0, 0, 1] , dataOffsetWords: 6 }), ports: [80], keep: true, reason: 'match' },
  { name: 'frame cut inside the Ethernet header', frame: cut(f({}), 10), ports: [80], keep: false, reason: 'truncated' },
  { name: 'frame cut inside the IPv4 header', frame: cut(f({}), 14 + 12), ports: [80], keep: false, reason: 'truncated' },
  { name: 'frame cut inside the TCP header', frame: cut(f({}), 14 + 20 + 10), ports: [80], keep: false, reason: 'bad_ip_length' },
  { name: 'frame cut inside a VLAN tag', frame: cut(f({ vlans: [5] }), 16), ports: [80], keep: false, reason: 'truncated' },
  { name: 'host CIDR matches the destination', frame: f({}), ports: [80], hosts: ['10.0.0.0/30'], keep: true, reason: 'match' },
  { name: 'host CIDR matches the source', frame: f({ src: '172.16.5.5' }), ports: [80], hosts: ['172.16.0.0/16'], keep: true, reason: 'match' },
  { name: 'host CIDR matches neither', frame: f({}), ports: [80], hosts: ['10.9.0.0/16'], keep: false, reason: 'host' },
  { name: 'host CIDR of the other family', frame: f({}, v6), ports: [80], hosts: ['10.0.0.0/8'], keep: false, reason: 'host' },
  { name: 'IPv6 host CIDR', frame: f({}, v6), ports: [80], hosts: ['fd00::/64'], keep: true, reason: 'match' },
  { name: 'host CIDR sees the inner addresses, not the tunnel', frame: f({ tunnel: { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.2' } }), ports: [80], hosts: ['192.168.0.0/24'], keep: false, reason: 'host' },
  { name: 'host CIDR on the inner address of an IPIP frame', frame: f({ tunnel: { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.2' } }), ports: [80], hosts: ['10.0.0.2/32'], keep: true, reason: 'match' },
  { name: 'IPIP inside IPIP (nested tunnel)', frame: nestedIpip(), ports: [80], keep: false, reason: 'nested_tunnel' },
];

/** IPIP whose inner packet is itself IPIP: built by wrapping a tunnelled frame's IP part once more. */
function nestedIpip(): Uint8Array {
  const inner = buildFrame({ ...v4, tunnel: { type: 'ipip', src: '192.168.1.1', dst: '192.168.1.2' } });
  const ip = inner.subarray(14);
  const outer = buildFrame({ ...v4, tunnel: { type: 'ipip', src: '192.168.0.1', dst: '192.168.0.2' }, payload: '' });
  // Replace the outer frame's inner packet with the whole tunnelled packet and fix the lengths.
  const out = new Uint8Array(14 + 20 + ip.length);
  out.set(outer.subarray(0, 34), 0);
  out.set(ip, 34);
  const total = 20 + ip.length;
  out[16] = total >> 8; out[17] = total & 0xff;
  return out;
}

// Addresses as tcplens prints and parses them: "10.0.0.1:80", "[fd00::1]:80", CIDRs for
// --trusted-lb. Bytes are network order, IPv4 in the first 4 bytes of a 16-byte field.
import { isIPv4, isIPv6 } from 'node:net';
import { TcplensError } from '../errors.js';

export type Family = 4 | 6;

export function formatAddr(bytes: Uint8Array, family: Family): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // Shorten the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function formatEndpoint(bytes: Uint8Array, family: Family, port: number): string {
  return family === 6 ? `[${formatAddr(bytes, 6)}]:${port}` : `${formatAddr(bytes, 4)}:${port}`;
}

/** An IP address as 16 bytes (IPv4 in the first 4) and its family; null if it is not one. */
export function parseAddr(text: string): { family: Family; bytes: Uint8Array } | null {
  const bytes = new Uint8Array(16);
  if (isIPv4(text)) {
    text.split('.').forEach((o, i) => { bytes[i] = Number(o); });
    return { family: 4, bytes };
  }
  if (!isIPv6(text)) return null;
  let t = text;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const o = v4[1].split('.').map(Number);
    t = t.slice(0, -v4[1].length) + `${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, tail] = t.includes('::') ? t.split('::') : [t, undefined];
  const h = head ? head.split(':') : [];
  const tl = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  groups.forEach((g, i) => { const v = parseInt(g, 16); bytes[2 * i] = v >> 8; bytes[2 * i + 1] = v & 0xff; });
  return { family: 6, bytes };
}

export interface Cidr { family: Family; prefix: number; net: Uint8Array; mask: Uint8Array; text: string }

export function parseCidr(text: string): Cidr {
  const [addrText, prefixText, extra] = text.split('/');
  const a = parseAddr(addrText ?? '');
  const max = a?.family === 6 ? 128 : 32;
  const prefix = prefixText === undefined ? max : /^\d+$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!a || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
    throw new TcplensError('TCPLENS_ERR_BAD_CIDR', `'${text}' is not an address or CIDR`,
      'give the balancers\' addresses, e.g. --trusted-lb 10.0.0.0/24 or --trusted-lb fd00::1');
  }
  const mask = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefix - 8 * i));
    mask[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  if (a.family === 4) mask.fill(0, 4);
  const net = a.bytes.map((b, i) => b & mask[i]);
  return { family: a.family, prefix, net, mask, text };
}

export function cidrContains(c: Cidr, family: Family, bytes: Uint8Array): boolean {
  if (c.family !== family) return false;
  for (let i = 0; i < 16; i++) if ((bytes[i] & c.mask[i]) !== c.net[i]) return false;
  return true;
}

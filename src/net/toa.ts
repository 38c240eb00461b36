// The TOA (TCP Option Address) codec in user space: the same dialect table and the same walk as the
// kernel's bpf/include/toa.h (which the tests hold to the same cases), plus toa.ko's by-value form.
import { TcplensError } from '../errors.js';
import type { Family } from './addr.js';

export interface ToaDialect { kind: number; len: 8 | 20; family: Family }

export const DEFAULT_DIALECTS: readonly ToaDialect[] = [
  { kind: 254, len: 8, family: 4 },
  { kind: 253, len: 20, family: 6 },
  { kind: 254, len: 20, family: 6 },
];
export const MAX_DIALECTS = 8;

/** TCP option kinds the Linux stack reads itself: a TOA under one of them would break the handshake. */
const KERNEL_KINDS = new Set([0, 1, 2, 3, 4, 5, 8, 19, 28, 29, 30, 34]);

/** "254/8" -> a dialect. Length decides the family: 8 = port + IPv4, 20 = port + IPv6. The one
 * parser for every flag that names a dialect (accept, toa, lab). */
export function parseDialect(text: string): ToaDialect {
  const m = /^(\d{1,3})\/(\d{1,2})$/.exec(text.trim());
  const kind = m ? Number(m[1]) : NaN;
  const len = m ? Number(m[2]) : NaN;
  if (!m || kind > 255 || (len !== 8 && len !== 20)) {
    throw new TcplensError('TCPLENS_ERR_BAD_TOA', `'${text}' is not a TOA dialect`,
      'use KIND/LEN with KIND up to 255 and LEN 8 (IPv4) or 20 (IPv6), e.g. --toa 200/8');
  }
  if (KERNEL_KINDS.has(kind)) {
    throw new TcplensError('TCPLENS_ERR_BAD_TOA', `kind ${kind} is a TCP option Linux reads itself, not a TOA`,
      'TOA kinds are 253, 254, or a vendor kind such as 200 (not 0-5, 8, 19, 28-30 or 34)');
  }
  return { kind, len: len as 8 | 20, family: len === 8 ? 4 : 6 };
}

/** The table to load: the defaults (unless dropped) plus each --toa, without repeats. */
export function dialectTable(extra: readonly string[], keepDefaults = true): ToaDialect[] {
  const out: ToaDialect[] = keepDefaults ? [...DEFAULT_DIALECTS] : [];
  for (const d of extra.map(parseDialect)) {
    if (!out.some((o) => o.kind === d.kind && o.len === d.len)) out.push(d);
  }
  if (out.length === 0) throw new TcplensError('TCPLENS_ERR_BAD_TOA', 'no TOA dialect left', 'give at least one --toa KIND/LEN');
  if (out.length > MAX_DIALECTS) throw new TcplensError('TCPLENS_ERR_BAD_TOA', `at most ${MAX_DIALECTS} TOA dialects`, 'drop some --toa flags');
  return out;
}

export type ToaParseStatus = 'none' | 'found' | 'malformed' | 'conflict';

export interface ToaResult {
  /** conflict: two or more options of a configured dialect; the fields describe the first */
  status: ToaParseStatus;
  kind?: number;
  len?: number;
  family?: Family;
  port?: number;
  /** 16 bytes, IPv4 in the first 4 */
  addr?: Uint8Array;
}

/** Walk TCP option bytes exactly as toa_parse() does in the kernel (bpf/include/toa-option.h):
 * the kernel's tcp_parse_options rules, every option looked at, a second TOA is a conflict. */
export function parseToaOptions(opts: Uint8Array, dialects: readonly ToaDialect[] = DEFAULT_DIALECTS): ToaResult {
  const n = Math.min(opts.length, 40);
  let wrongLen = false;
  let first: ToaResult | null = null;
  let conflict = false;
  for (let i = 0; i < n;) {
    const kind = opts[i];
    if (kind === 0) break;
    if (kind === 1) { i++; continue; }
    const size = i + 1 < n ? opts[i + 1] : 0;
    if (i + 1 >= n || size < 2 || i + size > n) {
      if (first) break; // what came before a broken option stands, as in the kernel
      return { status: 'malformed' };
    }
    const d = dialects.find((x) => x.kind === kind && x.len === size);
    if (d && first) conflict = true;
    else if (d) {
      const addr = new Uint8Array(16);
      addr.set(opts.subarray(i + 4, i + size));
      first = { status: 'found', kind, len: size, family: d.family, port: (opts[i + 2] << 8) | opts[i + 3], addr };
    } else if (dialects.some((x) => x.kind === kind)) wrongLen = true;
    i += size;
  }
  if (!first) return { status: wrongLen ? 'malformed' : 'none' };
  return conflict ? { ...first, status: 'conflict' } : first;
}

/** The option bytes an LVS balancer writes for a client. */
export function encodeToa(kind: number, family: Family, addr: Uint8Array, port: number): Uint8Array {
  const len = family === 4 ? 8 : 20;
  const out = new Uint8Array(len);
  out[0] = kind;
  out[1] = len;
  out[2] = port >> 8;
  out[3] = port & 0xff;
  out.set(addr.subarray(0, len - 4), 4);
  return out;
}

/** toa.ko keeps the option by value in sk_user_data (little-endian u64 on x86): opcode, opsize,
 * port, IPv4. Anything else there (a kernel pointer 0xffff...) is not a TOA. */
export function decodeToaKoValue(value: bigint): { port: number; addr: Uint8Array } | null {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  if (b[0] !== 254 || b[1] !== 8 || value >> 48n === 0xffffn) return null;
  const addr = new Uint8Array(16);
  addr.set(b.subarray(4, 8));
  return { port: (b[2] << 8) | b[3], addr };
}

// See what really crossed a lab wire: tcpdump inside a node's namespace, then our own read of the
// pcap with checksums recomputed from the bytes (so a bad checksum cannot hide behind offload).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { TcplensError } from '../errors.js';
import { formatAddr } from '../net/addr.js';

export interface CapturedSegment {
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: number; // FIN 1, SYN 2, RST 4, PSH 8, ACK 16
  seq: number;
  ttl: number;   // or hop limit
  options: Uint8Array;
  payloadLen: number;
  ipChecksumOk: boolean; // IPv6 has none: always true
  tcpChecksumOk: boolean;
}

export interface CapturedToa { kind: number; len: number; port: number; addr: string }

/** Start tcpdump on dev in netns; resolves when it is listening. stop() returns what it saw. */
export async function startCapture(netns: string, dev: string, file: string, filter = 'tcp'):
  Promise<{ stop(): Promise<CapturedSegment[]> }> {
  // --immediate-mode: with TPACKET_V3 block timeouts this kernel's captures otherwise stay empty.
  const p = spawn('ip', ['netns', 'exec', netns, 'tcpdump', '--immediate-mode', '-Z', 'root', '-U', '-n', '-i', dev, '-w', file, filter],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number>((res) => p.on('exit', (code) => res(code ?? -1)));
  let said = '';
  const listening = new Promise<boolean>((res) => {
    createInterface({ input: p.stderr! }).on('line', (l) => { said += `${l}\n`; if (l.includes('listening on')) res(true); });
    void exited.then(() => res(false));
  });
  if (!(await listening)) {
    throw new TcplensError('TCPLENS_ERR_LAB', `tcpdump in ${netns} did not start: ${said.trim()}`, 'is tcpdump installed? apt-get install tcpdump');
  }
  return {
    stop: async () => {
      p.kill('SIGINT');
      await exited;
      return parsePcap(readFileSync(file));
    },
  };
}

function sum16(bytes: Uint8Array, start: number, end: number, acc = 0): number {
  for (let i = start; i < end; i += 2) acc += (bytes[i] << 8) | (i + 1 < end ? bytes[i + 1] : 0);
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/** Classic pcap (tcpdump -w), Ethernet link type: every TCP segment over IPv4 or IPv6. */
export function parsePcap(buf: Uint8Array): CapturedSegment[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = dv.getUint32(0, true);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && dv.getUint32(0, false) !== 0xa1b2c3d4 && dv.getUint32(0, false) !== 0xa1b23c4d) {
    throw new TcplensError('TCPLENS_ERR_MALFORMED', 'not a classic pcap file', 'capture with tcpdump -w');
  }
  if (dv.getUint32(20, le) !== 1) throw new TcplensError('TCPLENS_ERR_MALFORMED', 'pcap link type is not Ethernet', 'capture on a veth');
  const out: CapturedSegment[] = [];
  for (let off = 24; off + 16 <= buf.length;) {
    const incl = dv.getUint32(off + 8, le);
    const frame = buf.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const seg = parseFrame(frame);
    if (seg) out.push(seg);
  }
  return out;
}

function parseFrame(f: Uint8Array): CapturedSegment | null {
  if (f.length < 14) return null;
  const type = (f[12] << 8) | f[13];
  let l4: number, tcpLen: number, family: 4 | 6, src: string, dst: string, ttl: number, ipOk = true, pseudo: number;
  if (type === 0x0800) {
    const ihl = (f[14] & 0x0f) * 4;
    if (f[14 + 9] !== 6) return null;
    family = 4;
    l4 = 14 + ihl;
    tcpLen = ((f[16] << 8) | f[17]) - ihl;
    ttl = f[22];
    src = formatAddr(f.subarray(26, 30), 4);
    dst = formatAddr(f.subarray(30, 34), 4);
    ipOk = fold(sum16(f, 14, 14 + ihl)) === 0xffff;
    pseudo = sum16(f, 26, 34) + 6 + tcpLen;
  } else if (type === 0x86dd) {
    if (f[14 + 6] !== 6) return null;
    family = 6;
    l4 = 54;
    tcpLen = (f[18] << 8) | f[19];
    ttl = f[21];
    src = formatAddr(f.subarray(22, 38), 6);
    dst = formatAddr(f.subarray(38, 54), 6);
    pseudo = sum16(f, 22, 54) + 6 + tcpLen;
  } else {
    return null;
  }
  if (l4 + tcpLen > f.length || tcpLen < 20) return null;
  const doff = (f[l4 + 12] >> 4) * 4;
  return {
    family, src, dst, ttl,
    sport: (f[l4] << 8) | f[l4 + 1],
    dport: (f[l4 + 2] << 8) | f[l4 + 3],
    seq: ((f[l4 + 4] << 24) | (f[l4 + 5] << 16) | (f[l4 + 6] << 8) | f[l4 + 7]) >>> 0,
    flags: f[l4 + 13],
    options: f.slice(l4 + 20, l4 + doff),
    payloadLen: tcpLen - doff,
    ipChecksumOk: ipOk,
    tcpChecksumOk: fold(sum16(f, l4, l4 + tcpLen, pseudo)) === 0xffff,
  };
}

/** The first option of a TOA shape (len 8: port + IPv4, len 20: port + IPv6) among kinds given. */
export function findToa(options: Uint8Array, kinds: number[] = [254, 253]): CapturedToa | null {
  for (let i = 0; i < options.length;) {
    const kind = options[i];
    if (kind === 0) break;
    if (kind === 1) { i++; continue; }
    const len = options[i + 1];
    if (!len || len < 2 || i + len > options.length) break;
    if (kinds.includes(kind) && (len === 8 || len === 20)) {
      const port = (options[i + 2] << 8) | options[i + 3];
      const addr = len === 8 ? formatAddr(options.subarray(i + 4, i + 8), 4) : formatAddr(options.subarray(i + 4, i + 20), 6);
      return { kind, len, port, addr };
    }
    i += len;
  }
  return null;
}

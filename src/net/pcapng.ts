// pcapng (IETF draft-ietf-opsawg-pcapng): sections (SHB, either byte order), interfaces (IDB,
// with if_tsresol and if_tsoffset), packets (EPB, SPB, the obsolete PB); every other block is
// skipped by its length. Interfaces with different link types may share a file.
import { TcplensError } from '../errors.js';
import { MAX_RECORD_BYTES, type RecordSink } from './capture-record.js';

export const PCAPNG_SHB_TYPE = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const IDB_TYPE = 1;
const PB_TYPE = 2;
const SPB_TYPE = 3;
const EPB_TYPE = 6;
const OPT_END = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;
/** A block may hold a record plus options; anything this big is corruption, not data. */
const MAX_BLOCK_BYTES = MAX_RECORD_BYTES + 65536;

interface Interface {
  linkType: number;
  snaplen: number;
  unitsPerSec: number;
  offsetSec: number;
  accepted: boolean;
}

function corrupt(what: string): TcplensError {
  return new TcplensError('TCPLENS_ERR_PCAP', `corrupt pcapng: ${what}`,
    'the file is damaged or not a pcapng; packets before this point were read');
}

export function isPcapngMagic(b: Uint8Array): boolean {
  return b[0] === 0x0a && b[1] === 0x0d && b[2] === 0x0d && b[3] === 0x0a;
}

export class PcapngParser {
  private littleEndian = true;
  private inSection = false;
  private interfaces: Interface[] = [];
  /** Packets on interfaces whose link type we do not decode. */
  skippedUnsupported = 0;
  refusedLinkType: number | null = null;
  acceptedInterfaces = 0;

  constructor(private readonly acceptLinkType: (linkType: number) => boolean) {}

  private u16(b: Buffer, at: number): number { return this.littleEndian ? b.readUInt16LE(at) : b.readUInt16BE(at); }
  private u32(b: Buffer, at: number): number { return this.littleEndian ? b.readUInt32LE(at) : b.readUInt32BE(at); }

  parse(buf: Buffer, off: number, end: number, emit: RecordSink): number {
    while (end - off >= 12) {
      const typeRaw = buf.readUInt32LE(off);
      if (typeRaw === PCAPNG_SHB_TYPE) {
        // A new section may switch byte order: the magic after the length tells.
        const bom = buf.readUInt32LE(off + 8);
        if (bom === BYTE_ORDER_MAGIC) this.littleEndian = true;
        else if (buf.readUInt32BE(off + 8) === BYTE_ORDER_MAGIC) this.littleEndian = false;
        else throw corrupt('section header with a bad byte-order magic');
        this.inSection = true;
        this.interfaces = [];
      } else if (!this.inSection) {
        throw corrupt('data before the first section header');
      }
      const type = this.u32(buf, off);
      const len = this.u32(buf, off + 4);
      if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK_BYTES) throw corrupt(`block of type 0x${type.toString(16)} with length ${len}`);
      if (end - off < len) break;
      if (this.u32(buf, off + len - 4) !== len) throw corrupt(`block of type 0x${type.toString(16)}: trailing length differs`);
      this.block(type, buf, off, len, emit);
      off += len;
    }
    return off;
  }

  private block(type: number, b: Buffer, off: number, len: number, emit: RecordSink): void {
    const bodyEnd = off + len - 4;
    if (type === IDB_TYPE) {
      if (len < 20) throw corrupt('interface block too short');
      const iface: Interface = { linkType: this.u16(b, off + 8), snaplen: this.u32(b, off + 12), unitsPerSec: 1e6, offsetSec: 0, accepted: false };
      this.options(b, off + 16, bodyEnd, (code, at, olen) => {
        if (code === OPT_IF_TSRESOL && olen >= 1) {
          const v = b[at];
          const units = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
          if (!(units >= 1 && units <= 1e18)) throw corrupt(`if_tsresol ${v}`);
          iface.unitsPerSec = units;
        } else if (code === OPT_IF_TSOFFSET && olen >= 8) {
          iface.offsetSec = Number(this.littleEndian ? b.readBigInt64LE(at) : b.readBigInt64BE(at));
        }
      });
      iface.accepted = this.acceptLinkType(iface.linkType);
      if (iface.accepted) this.acceptedInterfaces++;
      else this.refusedLinkType ??= iface.linkType;
      this.interfaces.push(iface);
    } else if (type === EPB_TYPE || type === PB_TYPE) {
      if (len < 32) throw corrupt('packet block too short');
      const id = type === EPB_TYPE ? this.u32(b, off + 8) : this.u16(b, off + 8);
      const capLen = this.u32(b, off + 20);
      const origLen = this.u32(b, off + 24);
      if (off + 28 + capLen > bodyEnd) throw corrupt(`packet of ${capLen} bytes runs past its block`);
      this.packet(id, this.u32(b, off + 12), this.u32(b, off + 16), b.subarray(off + 28, off + 28 + capLen), origLen, emit);
    } else if (type === SPB_TYPE) {
      // No timestamp and no captured length: it is the block's room, capped by interface 0's snaplen.
      const iface = this.interfaces[0];
      if (!iface) throw corrupt('simple packet block without an interface');
      const origLen = this.u32(b, off + 8);
      let capLen = Math.min(origLen, bodyEnd - (off + 12));
      if (iface.snaplen > 0) capLen = Math.min(capLen, iface.snaplen);
      this.packet(0, 0, 0, b.subarray(off + 12, off + 12 + capLen), origLen, emit);
    }
  }

  private packet(id: number, hi: number, lo: number, data: Buffer, origLen: number, emit: RecordSink): void {
    const iface = this.interfaces[id];
    if (!iface) throw corrupt(`packet on interface ${id}, which was never described`);
    if (!iface.accepted) { this.skippedUnsupported++; return; }
    const { unitsPerSec } = iface;
    let sec: number, nsec: number;
    const ts = hi * 4294967296 + lo;
    if (ts <= Number.MAX_SAFE_INTEGER && unitsPerSec <= 1e9) {
      sec = Math.floor(ts / unitsPerSec);
      const frac = ts - sec * unitsPerSec;
      nsec = unitsPerSec === 1e9 ? frac : Math.floor((frac * 1e9) / unitsPerSec);
    } else {
      // Nanosecond (or finer) counters pass 2^53 around the year 2255 at 1 GHz, sooner when finer.
      const big = (BigInt(hi) << 32n) | BigInt(lo);
      const units = BigInt(unitsPerSec);
      sec = Number(big / units);
      nsec = Number(((big % units) * 1_000_000_000n) / units);
    }
    emit({ linkType: iface.linkType, interfaceId: id, sec: sec + iface.offsetSec, nsec, data, origLen: Math.max(origLen, data.length) });
  }

  private options(b: Buffer, at: number, end: number, each: (code: number, at: number, len: number) => void): void {
    while (end - at >= 4) {
      const code = this.u16(b, at);
      const olen = this.u16(b, at + 2);
      if (code === OPT_END) return;
      if (at + 4 + olen > end) throw corrupt(`option ${code} runs past its block`);
      each(code, at + 4, olen);
      at += 4 + ((olen + 3) & ~3);
    }
  }
}

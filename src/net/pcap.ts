// Classic pcap (wiki.wireshark.org/Development/LibpcapFileFormat): microsecond and nanosecond
// magic, either byte order. Reading is a format parser driven by CaptureReader (which owns the
// streaming); writing is pure encoding that the caller sends where it likes.
import { TcplensError } from '../errors.js';
import { MAX_RECORD_BYTES, type RecordSink } from './capture-record.js';
import { LINKTYPE_ETHERNET } from './link-type.js';

export const PCAP_MAGIC_MICRO = 0xa1b2c3d4;
export const PCAP_MAGIC_NANO = 0xa1b23c4d;
export const PCAP_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
/** The snaplen tcpdump writes by default. */
export const DEFAULT_SNAPLEN = 262144;

export function isPcapMagic(b: Uint8Array): boolean {
  const le = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  const be = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  return le === PCAP_MAGIC_MICRO || le === PCAP_MAGIC_NANO || be === PCAP_MAGIC_MICRO || be === PCAP_MAGIC_NANO;
}

export class PcapParser {
  private header: { littleEndian: boolean; nano: boolean; linkType: number; snaplen: number } | null = null;

  constructor(private readonly acceptLinkType: (linkType: number) => boolean, private readonly describeRefusal: (linkType: number) => TcplensError) {}

  get linkType(): number | null { return this.header?.linkType ?? null; }

  /** Parses whole units from buf[off..end); returns where it stopped (the first incomplete unit). */
  parse(buf: Buffer, off: number, end: number, emit: RecordSink): number {
    if (!this.header) {
      if (end - off < PCAP_HEADER_BYTES) return off;
      const magicLe = buf.readUInt32LE(off);
      const littleEndian = magicLe === PCAP_MAGIC_MICRO || magicLe === PCAP_MAGIC_NANO;
      const magic = littleEndian ? magicLe : buf.readUInt32BE(off);
      const u32 = (at: number) => (littleEndian ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
      // The upper bits of the link-type field carry FCS information (pcap spec), not the type.
      const linkType = u32(off + 20) & 0x0fffffff;
      this.header = { littleEndian, nano: magic === PCAP_MAGIC_NANO, linkType, snaplen: u32(off + 16) };
      if (!this.acceptLinkType(linkType)) throw this.describeRefusal(linkType);
      off += PCAP_HEADER_BYTES;
    }
    const { littleEndian, nano, linkType } = this.header;
    while (end - off >= RECORD_HEADER_BYTES) {
      const sec = littleEndian ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
      const frac = littleEndian ? buf.readUInt32LE(off + 4) : buf.readUInt32BE(off + 4);
      const capLen = littleEndian ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
      const origLen = littleEndian ? buf.readUInt32LE(off + 12) : buf.readUInt32BE(off + 12);
      if (capLen > MAX_RECORD_BYTES || frac >= (nano ? 1e9 : 1e6)) {
        throw new TcplensError('TCPLENS_ERR_PCAP',
          `corrupt pcap record header (captured length ${capLen}, fraction ${frac})`,
          'the file is damaged or not a pcap; packets before this point were read');
      }
      if (end - off < RECORD_HEADER_BYTES + capLen) break;
      const data = buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + capLen);
      emit({ linkType, interfaceId: 0, sec, nsec: nano ? frac : frac * 1000, data, origLen: Math.max(origLen, capLen) });
      off += RECORD_HEADER_BYTES + capLen;
    }
    return off;
  }
}

export interface PcapWriterOptions {
  nanosecond?: boolean;
  snaplen?: number;
  linkType?: number;
}

/** Encodes a classic pcap (little-endian, as tcpdump writes on x86). */
export class PcapWriter {
  readonly nanosecond: boolean;
  readonly snaplen: number;
  readonly linkType: number;

  constructor(opts: PcapWriterOptions = {}) {
    this.nanosecond = opts.nanosecond ?? false;
    this.snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    this.linkType = opts.linkType ?? LINKTYPE_ETHERNET;
    if (!Number.isInteger(this.snaplen) || this.snaplen < 1 || this.snaplen > MAX_RECORD_BYTES) {
      throw new TcplensError('TCPLENS_ERR_PCAP', `snaplen ${this.snaplen} is out of range`, `give a snaplen from 1 to ${MAX_RECORD_BYTES}`);
    }
  }

  header(): Buffer {
    const b = Buffer.alloc(PCAP_HEADER_BYTES);
    b.writeUInt32LE(this.nanosecond ? PCAP_MAGIC_NANO : PCAP_MAGIC_MICRO, 0);
    b.writeUInt16LE(2, 4);
    b.writeUInt16LE(4, 6);
    b.writeUInt32LE(this.snaplen, 16);
    b.writeUInt32LE(this.linkType, 20);
    return b;
  }

  /** One record: its 16-byte header and the frame cut to the snaplen. */
  record(sec: number, nsec: number, frame: Uint8Array, origLen = frame.length): Buffer {
    const capLen = Math.min(frame.length, this.snaplen);
    const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES + capLen);
    b.writeUInt32LE(sec >>> 0, 0);
    b.writeUInt32LE(this.nanosecond ? nsec : Math.floor(nsec / 1000), 4);
    b.writeUInt32LE(capLen, 8);
    b.writeUInt32LE(Math.max(origLen, frame.length), 12);
    b.set(frame.subarray(0, capLen), RECORD_HEADER_BYTES);
    return b;
  }
}

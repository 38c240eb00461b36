// --write FILE: the frames the filter kept, as a classic pcap (nanosecond) that tcpdump, tshark and
// Wireshark open. Buffered, written synchronously (no stream to drain at exit); a tag the kernel
// stripped into metadata is put back into the frame, as libpcap does, so the file shows it.
import { closeSync, openSync, writeSync } from 'node:fs';
import { TcplensError } from '../../errors.js';
import { LINKTYPE_ETHERNET } from '../../net/link-type.js';
import { PcapWriter } from '../../net/pcap.js';

const FLUSH_AT = 256 * 1024;

export class CaptureFileWriter {
  private fd: number;
  private writer: PcapWriter | null = null;
  private chunks: Buffer[] = [];
  private held = 0;
  /** frames of another link type than the file's first (a pcapng of mixed interfaces) */
  skipped = 0;
  written = 0;

  constructor(readonly path: string, private readonly snaplen?: number) {
    try {
      this.fd = path === '-' ? 1 : openSync(path, 'w');
    } catch (e) {
      throw new TcplensError('TCPLENS_ERR_PCAP', `cannot write ${path}: ${(e as Error).message}`, 'give a path in a writable directory');
    }
  }

  frame(linkType: number, sec: number, nsec: number, data: Uint8Array, origLen: number, strippedVlan: number | null = null, tpid = 0x8100): void {
    if (!this.writer) {
      this.writer = new PcapWriter({ nanosecond: true, linkType, ...(this.snaplen ? { snaplen: this.snaplen } : {}) });
      this.push(this.writer.header());
    }
    if (linkType !== this.writer.linkType) { this.skipped++; return; }
    if (strippedVlan !== null && linkType === LINKTYPE_ETHERNET && data.length >= 12) {
      const tagged = new Uint8Array(data.length + 4);
      tagged.set(data.subarray(0, 12));
      tagged[12] = tpid >> 8; tagged[13] = tpid & 0xff;
      tagged[14] = (strippedVlan >> 8) & 0xff; tagged[15] = strippedVlan & 0xff;
      tagged.set(data.subarray(12), 16);
      data = tagged;
      origLen += 4;
    }
    this.push(this.writer.record(sec, nsec, data, origLen));
    this.written++;
  }

  flush(): void {
    if (this.held === 0 || this.fd < 0) return;
    const all = Buffer.concat(this.chunks);
    this.chunks = [];
    this.held = 0;
    for (let off = 0; off < all.length;) off += writeSync(this.fd, all, off);
  }

  close(): void {
    if (this.fd < 0) return;
    // An empty capture is still a valid file: header only.
    if (!this.writer) {
      this.writer = new PcapWriter({ nanosecond: true, linkType: LINKTYPE_ETHERNET });
      this.push(this.writer.header());
    }
    this.flush();
    if (this.fd !== 1) closeSync(this.fd);
    this.fd = -1;
  }

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.held += b.length;
    if (this.held >= FLUSH_AT) this.flush();
  }
}

// Reads a capture (classic pcap or pcapng, told apart by the first four bytes) from chunks as they
// come, so a file, a pipe and stdin are the same thing. Memory is bounded: what is held between
// chunks is at most one unfinished record or block, and the parsers refuse sizes past
// MAX_RECORD_BYTES. Corruption throws a TcplensError from push(); every record before it has
// already been handed out.
import { TcplensError } from '../errors.js';
import type { RecordSink } from './capture-record.js';
import { isSupportedLinkType, SUPPORTED_LINK_TYPES_TEXT } from './link-type.js';
import { isPcapMagic, PcapParser } from './pcap.js';
import { isPcapngMagic, PcapngParser } from './pcapng.js';

export type CaptureFormat = 'pcap' | 'pcapng';

export interface CaptureSummary {
  format: CaptureFormat | null;
  records: number;
  /** Bytes at the end that did not make a whole record (a capture cut short). */
  truncatedBytes: number;
  /** pcapng packets on interfaces of a link type we do not decode. */
  skippedUnsupportedLinkType: number;
}

function refusal(linkType: number): TcplensError {
  return new TcplensError('TCPLENS_ERR_PCAP', `link type ${linkType} is not supported`,
    `tcplens decodes ${SUPPORTED_LINK_TYPES_TEXT}; capture on such an interface or convert the file`);
}

export class CaptureReader {
  private parser: PcapParser | PcapngParser | null = null;
  private held: Buffer = Buffer.alloc(0);
  private records = 0;
  private failed: TcplensError | null = null;
  private readonly count: RecordSink;

  constructor(sink: RecordSink, private readonly acceptLinkType: (linkType: number) => boolean = isSupportedLinkType) {
    this.count = (r) => { this.records++; sink(r); };
  }

  get format(): CaptureFormat | null {
    return this.parser === null ? null : this.parser instanceof PcapParser ? 'pcap' : 'pcapng';
  }

  push(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    const input = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const buf = this.held.length === 0 ? input : Buffer.concat([this.held, input]);
    try {
      if (!this.parser) {
        if (buf.length < 4) { this.held = Buffer.from(buf); return; }
        if (isPcapMagic(buf)) this.parser = new PcapParser(this.acceptLinkType, refusal);
        else if (isPcapngMagic(buf)) this.parser = new PcapngParser(this.acceptLinkType);
        else {
          throw new TcplensError('TCPLENS_ERR_PCAP', 'input is neither pcap nor pcapng (unknown magic number)',
            'give a file written by tcpdump, tshark, Wireshark or tcplens --write');
        }
      }
      const stop = this.parser.parse(buf, 0, buf.length, this.count);
      // Copy the tail: holding a view would pin the whole chunk.
      this.held = stop === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(stop));
    } catch (e) {
      // The parsers throw only TcplensErrors; anything else is a bug (ours or the sink's), shown as such.
      if (e instanceof TcplensError) { this.held = Buffer.alloc(0); this.failed = e; }
      throw e;
    }
  }

  /** End of input. A capture cut mid-record is counted, not an error; one with no header is. */
  end(): CaptureSummary {
    if (this.failed) throw this.failed;
    if (!this.parser) {
      throw new TcplensError('TCPLENS_ERR_PCAP', this.held.length === 0 ? 'the capture is empty' : 'the capture ends inside its header',
        'give a pcap or pcapng file; tcpdump -w writes one');
    }
    if (this.parser instanceof PcapParser && this.parser.linkType === null) {
      throw new TcplensError('TCPLENS_ERR_PCAP', 'the capture ends inside its header', 'the file was cut short');
    }
    let skipped = 0;
    if (this.parser instanceof PcapngParser) {
      skipped = this.parser.skippedUnsupported;
      if (this.parser.acceptedInterfaces === 0 && this.parser.refusedLinkType !== null) throw refusal(this.parser.refusedLinkType);
    }
    return { format: this.format, records: this.records, truncatedBytes: this.held.length, skippedUnsupportedLinkType: skipped };
  }
}

// Writes pcapng for tests (tcpdump reads pcapng but cannot write it): sections in either byte
// order, interfaces with if_tsresol, EPB, SPB, the obsolete PB, and blocks of unknown type.
export type PcapngBlock =
  | { kind: 'shb'; bigEndian?: boolean }
  | { kind: 'idb'; linkType: number; snaplen?: number; tsresol?: number; tsoffset?: number }
  | { kind: 'epb'; iface: number; ts: bigint; data: Uint8Array; origLen?: number }
  | { kind: 'spb'; data: Uint8Array; origLen?: number }
  | { kind: 'pb'; iface: number; ts: bigint; data: Uint8Array }
  | { kind: 'unknown'; type: number; body: Uint8Array };

export function buildPcapng(blocks: PcapngBlock[]): Buffer {
  const out: Buffer[] = [];
  let be = false;
  for (const b of blocks) {
    if (b.kind === 'shb') be = b.bigEndian ?? false;
    const w = new Writer(be);
    let type: number;
    switch (b.kind) {
      case 'shb': type = 0x0a0d0d0a; w.u32(0x1a2b3c4d); w.u16(1); w.u16(0); w.u32(0xffffffff); w.u32(0xffffffff); break;
      case 'idb':
        type = 1; w.u16(b.linkType); w.u16(0); w.u32(b.snaplen ?? 262144);
        if (b.tsresol !== undefined) { w.u16(9); w.u16(1); w.bytes(Uint8Array.of(b.tsresol)); w.pad(); }
        if (b.tsoffset !== undefined) { w.u16(14); w.u16(8); w.u32(be ? 0 : b.tsoffset); w.u32(be ? b.tsoffset : 0); }
        w.u16(0); w.u16(0);
        break;
      case 'epb':
        type = 6; w.u32(b.iface); w.u32(Number(b.ts >> 32n)); w.u32(Number(b.ts & 0xffffffffn));
        w.u32(b.data.length); w.u32(b.origLen ?? b.data.length); w.bytes(b.data); w.pad();
        break;
      case 'spb': type = 3; w.u32(b.origLen ?? b.data.length); w.bytes(b.data); w.pad(); break;
      case 'pb':
        type = 2; w.u16(b.iface); w.u16(0); w.u32(Number(b.ts >> 32n)); w.u32(Number(b.ts & 0xffffffffn));
        w.u32(b.data.length); w.u32(b.data.length); w.bytes(b.data); w.pad();
        break;
      case 'unknown': type = b.type; w.bytes(b.body); w.pad(); break;
    }
    const body = w.done();
    const head = new Writer(be); head.u32(type); head.u32(body.length + 12);
    const tail = new Writer(be); tail.u32(body.length + 12);
    out.push(head.done(), body, tail.done());
  }
  return Buffer.concat(out);
}

class Writer {
  private parts: number[] = [];
  constructor(private readonly be: boolean) {}
  u16(v: number): void { if (this.be) this.parts.push(v >> 8, v & 0xff); else this.parts.push(v & 0xff, v >> 8); }
  u32(v: number): void {
    const b = [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
    this.parts.push(...(this.be ? b : b.reverse()));
  }
  bytes(b: Uint8Array): void { for (const x of b) this.parts.push(x); }
  pad(): void { while (this.parts.length % 4) this.parts.push(0); }
  done(): Buffer { return Buffer.from(this.parts); }
}

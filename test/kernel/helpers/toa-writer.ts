// Loads the TOA writer fixture onto a cgroup: connections made from it carry the TOA we choose
// (per client port, or one for all), as a FULLNAT balancer would write it.
import { BpfObject } from '../../../src/kernel/bpf-object.js';
import { objectPath } from '../../../src/kernel/paths.js';
import { parseAddr } from '../../../src/net/addr.js';
import { encodeToa } from '../../../src/net/toa.js';

export const WRITE_SYN = 1, WRITE_ACK = 2;

export class ToaWriter {
  private readonly obj: BpfObject;

  constructor(cgroup: string, writeOn = WRITE_SYN | WRITE_ACK) {
    this.obj = BpfObject.open(objectPath('test/kernel/fixtures/toa-writer'));
    try {
      this.obj.setRodata({ write_on: writeOn });
      this.obj.load();
      this.obj.attachCgroup('toa_writer', cgroup);
    } catch (e) {
      this.obj.close();
      throw e;
    }
  }

  private value(option: Uint8Array): Buffer {
    const layout = this.obj.struct('toa_writer_opt');
    return Buffer.from(layout.encode({ bytes: option, len: option.length }));
  }

  /** The option written on connections from this client port. */
  forPort(port: number, option: Uint8Array): void {
    const key = Buffer.alloc(2);
    key.writeUInt16LE(port);
    this.obj.map('by_port').update(key, this.value(option));
  }

  /** Name `client` as the real client of connections from localPort (254/8 or 253/20 by family). */
  set(localPort: number, client: { addr: string; port: number }, kind?: number): void {
    const a = parseAddr(client.addr)!;
    this.forPort(localPort, encodeToa(kind ?? (a.family === 4 ? 254 : 253), a.family, a.bytes, client.port));
  }

  /** The option written on every other connection. */
  forAll(option: Uint8Array): void {
    this.obj.map('fallback').update(Buffer.alloc(4), this.value(option));
  }

  close(): void {
    this.obj.close();
  }
}

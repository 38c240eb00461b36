// IPv4-in-IPv4 packets without an ipip device (this kernel has none): a raw IPPROTO_IPIP socket
// made inside a namespace; each send gets an outer IPv4 header (protocol 4) from the kernel, from
// the namespace's route to `outerDst`, around the inner packet we give it.
import { c, errno, strerror } from '../../../src/kernel/libbpf.js';
import { kernelBtf } from '../../../src/kernel/btf.js';
import { withNetnsAt } from '../../../src/kernel/netns.js';
import { parseAddr } from '../../../src/net/addr.js';

const AF_INET = 2, SOCK_RAW = 3, IPPROTO_IPIP = 4;

export class IpipSender {
  private fd: number;
  private readonly addr: Buffer;

  constructor(netns: string, outerDst: string) {
    this.fd = withNetnsAt(`/run/netns/${netns}`, () => c.socket(AF_INET, SOCK_RAW, IPPROTO_IPIP) as number);
    if (this.fd < 0) throw new Error(`raw IPIP socket in ${netns}: ${strerror(errno())}`);
    const sin = kernelBtf().struct('sockaddr_in');
    this.addr = Buffer.from(sin.encode({ sin_family: AF_INET, sin_port: 0, sin_addr: parseAddr(outerDst)!.bytes.subarray(0, 4) }));
  }

  send(innerPacket: Uint8Array): void {
    const n = Number(c.sendto(this.fd, Buffer.from(innerPacket), innerPacket.length, 0, this.addr, this.addr.length));
    if (n !== innerPacket.length) throw new Error(`sendto: ${strerror(errno())}`);
  }

  close(): void {
    if (this.fd >= 0) c.close(this.fd);
    this.fd = -1;
  }
}

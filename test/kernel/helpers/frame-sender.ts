// Whole Ethernet frames onto a wire: a raw AF_PACKET socket made inside a namespace and bound to
// one of its interfaces. For traffic no device here can make (this kernel has no 8021q module, so
// no vlan devices): VLAN-tagged frames sent in-band, which the receiving veth untags into skb
// metadata as a NIC with VLAN offload would.
import { c, errno, strerror } from '../../../src/kernel/libbpf.js';
import { kernelBtf } from '../../../src/kernel/btf.js';
import { withNetnsAt } from '../../../src/kernel/netns.js';

const AF_PACKET = 17, SOCK_RAW = 3;

/** A raw socket that sends each buffer whole to one address (IpipSender is one too). */
export class RawSender {
  constructor(private fd: number, private readonly addr: Buffer) {}

  send(bytes: Uint8Array): void {
    const n = Number(c.sendto(this.fd, Buffer.from(bytes), bytes.length, 0, this.addr, this.addr.length));
    if (n !== bytes.length) throw new Error(`sendto: ${strerror(errno())}`);
  }

  close(): void {
    if (this.fd >= 0) c.close(this.fd);
    this.fd = -1;
  }
}

export class FrameSender extends RawSender {
  constructor(netns: string, iface: string) {
    const { fd, ifindex } = withNetnsAt(`/run/netns/${netns}`, () => ({
      fd: c.socket(AF_PACKET, SOCK_RAW, 0) as number, ifindex: c.if_nametoindex(iface) as number,
    }));
    if (fd < 0 || ifindex === 0) throw new Error(`AF_PACKET socket on ${iface} in ${netns}: ${strerror(errno())}`);
    super(fd, Buffer.from(kernelBtf().struct('sockaddr_ll').encode({ sll_family: AF_PACKET, sll_ifindex: ifindex, sll_halen: 6 })));
  }
}

// IPv4-in-IPv4 packets without an ipip device (this kernel has none): a raw IPPROTO_IPIP socket
// made inside a namespace; each send gets an outer IPv4 header (protocol 4) from the kernel, from
// the namespace's route to `outerDst`, around the inner packet we give it.
import { c, errno, strerror } from '../../../src/kernel/libbpf.js';
import { kernelBtf } from '../../../src/kernel/btf.js';
import { withNetnsAt } from '../../../src/kernel/netns.js';
import { parseAddr } from '../../../src/net/addr.js';
import { RawSender } from './frame-sender.js';

const AF_INET = 2, SOCK_RAW = 3, IPPROTO_IPIP = 4;

export class IpipSender extends RawSender {
  constructor(netns: string, outerDst: string) {
    const fd = withNetnsAt(`/run/netns/${netns}`, () => c.socket(AF_INET, SOCK_RAW, IPPROTO_IPIP) as number);
    if (fd < 0) throw new Error(`raw IPIP socket in ${netns}: ${strerror(errno())}`);
    const sin = kernelBtf().struct('sockaddr_in');
    super(fd, Buffer.from(sin.encode({ sin_family: AF_INET, sin_port: 0, sin_addr: parseAddr(outerDst)!.bytes.subarray(0, 4) })));
  }
}

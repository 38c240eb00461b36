// Test peer: a TCP server whose handshake goes out with the namespace's default TTL, and which
// then sets the accepted socket's TTL / hop limit to TTL (IP_TTL, IPV6_UNICAST_HOPS through libc:
// node:net has no way) and sends three segments. Prints "listening" when ready.
//   node ttl-server.js PORT TTL
import { createServer } from 'node:net';
import { c } from '../../../src/kernel/libbpf.js';

const [port, ttl] = [Number(process.argv[2] ?? 8081), Number(process.argv[3] ?? 9)];
const IPPROTO_IP = 0, IP_TTL = 2, IPPROTO_IPV6 = 41, IPV6_UNICAST_HOPS = 16;

let ready = 0;
for (const host of ['0.0.0.0', '::']) {
  const server = createServer((sock) => {
    sock.on('error', () => { /* the probe resets */ });
    const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    const v = Buffer.alloc(4);
    v.writeInt32LE(ttl);
    const [level, name] = host === '::' ? [IPPROTO_IPV6, IPV6_UNICAST_HOPS] : [IPPROTO_IP, IP_TTL];
    if ((c.setsockopt(fd, level, name, v, 4) as number) < 0) process.stderr.write('setsockopt failed\n');
    let sent = 0;
    const tick = setInterval(() => {
      if (sock.destroyed || sent++ === 3) { clearInterval(tick); sock.destroy(); return; }
      sock.write(Buffer.alloc(100, 0x61));
    }, 30);
  });
  server.listen({ host, port, ipv6Only: true }, () => { if (++ready === 2) process.stdout.write('listening\n'); });
}
process.on('SIGTERM', () => process.exit(0));

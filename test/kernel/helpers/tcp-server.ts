// Test peer: a TCP server that tells each client which address it saw (socket.remoteAddress /
// remotePort, i.e. what accept()/getpeername() returned), then closes. Prints "listening" when ready.
import { createServer } from 'node:net';

const [host, port] = [process.argv[2] ?? '::', Number(process.argv[3] ?? 8080)];
const server = createServer((sock) => {
  sock.end(`${sock.remoteAddress} ${sock.remotePort}\n`);
  sock.on('error', () => { /* client went away */ });
});
server.listen({ host, port, ipv6Only: false }, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

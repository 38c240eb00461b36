// A lab real server: answers every request with which server it is and the peer its socket saw
// (with FULLNAT that is the balancer, not the client). Run inside the server's namespace:
//   node http-server.js NAME PORT
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const [name = 'server', portText = '80'] = process.argv.slice(2);

function endpoint(addr: string | undefined, port: number | undefined): string {
  const a = (addr ?? '?').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify({
    server: name,
    peer: endpoint(req.socket.remoteAddress, req.socket.remotePort),
    local: endpoint(req.socket.localAddress, req.socket.localPort),
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) + 1 });
  res.end(`${body}\n`);
}

// One socket per family (not a dual-stack '::'), so IPv4 connections are plain AF_INET sockets
// and every tool sees 10.x.y.z, not ::ffff:10.x.y.z.
const servers = ['0.0.0.0', '::'].map((host) => createServer(answer).listen({ host, port: Number(portText), ipv6Only: true }));
let ready = 0;
for (const s of servers) {
  s.on('listening', () => { if (++ready === servers.length) process.stdout.write(`listening ${name} ${portText}\n`); });
  s.on('error', (e) => { process.stderr.write(`${name}: ${e.message}\n`); process.exit(1); });
}
process.on('SIGTERM', () => process.exit(0));

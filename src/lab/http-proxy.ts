// A lab gateway: an HTTP reverse proxy (port 80) in front of the pods, choosing a pod per request
// by smooth weighted round robin (equal weights: plain round robin; --skew makes it unfair on
// purpose). The request goes on as it came (method, path, headers, X-Tcplens-Probe among them),
// over a connection of the gateway's own, as ingress-nginx or Kong do.
//   node http-proxy.js NAME PORT POD_PORT ip1=weight1 ip2=weight2 ...
import { createServer, request, Agent } from 'node:http';
import { WeightedRoundRobin } from './gateway-tier.js';

const [name = 'gw', portText = '80', podPortText = '29090', ...podArgs] = process.argv.slice(2);
const pods = podArgs.map((a) => a.split('='));
const choose = new WeightedRoundRobin(pods.map((p) => p[0]), pods.map((p) => Number(p[1] ?? 1)));
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

const server = createServer((req, res) => {
  const pod = choose.next();
  const up = request({ host: pod, port: Number(podPortText), method: req.method, path: req.url, headers: { ...req.headers, 'x-forwarded-by': name }, agent },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
  up.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`${name}: ${pod}: ${e.message}\n`);
  });
  req.pipe(up);
});
server.listen({ host: '::', port: Number(portText), ipv6Only: false }, () => process.stdout.write(`listening ${name} ${portText}\n`));
server.on('error', (e) => { process.stderr.write(`${name}: ${e.message}\n`); process.exit(1); });
process.on('SIGTERM', () => process.exit(0));

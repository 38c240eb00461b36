// Load for the live-capture bench, run inside a client namespace:
//   node http-flood.js HOST PORT CONCURRENCY SECONDS
// CONCURRENCY keep-alive connections, each sending its next request as soon as the last is
// answered, for SECONDS; prints {"requests":N,"errors":E} at the end.
import { Agent, request } from 'node:http';

const [host = '', portText = '80', concText = '8', secText = '5'] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: Number(concText) });
const until = Date.now() + Number(secText) * 1000;
let requests = 0, errors = 0;

function loop(worker: number, i = 0): Promise<void> {
  if (Date.now() >= until) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const req = request({ host, port: Number(portText), path: `/w${worker}/${i}`, agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => { requests++; resolve(); });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end();
  }).then(() => loop(worker, i + 1));
}

await Promise.all(Array.from({ length: Number(concText) }, (_, w) => loop(w)));
agent.destroy();
process.stdout.write(`${JSON.stringify({ requests, errors })}\n`);

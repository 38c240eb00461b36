// Open-loop load for the balance-rate bench, run inside a lab client namespace:
//   node http-rate.js HOST PORT RATE SECONDS CONNECTIONS
// RATE requests a second for SECONDS, whether or not the earlier ones were answered (a closed
// loop would slow down with the system and hide that it cannot keep up), over up to CONNECTIONS
// keep-alive connections (each one balanced on its own). Prints at the end
// {"sent":N,"answered":A,"errors":E,"late":L,"seconds":S}; late = requests not yet sent when due
// because CONNECTIONS x 8 were already waiting (the generator itself could not keep up).
import { Agent, request } from 'node:http';

const [host = '', portText = '80', rateText = '100', secText = '5', connText = '32'] = process.argv.slice(2);
const rate = Number(rateText), seconds = Number(secText), conns = Number(connText);
const agent = new Agent({ keepAlive: true, maxSockets: conns });
const maxWaiting = conns * 8;
let sent = 0, answered = 0, errors = 0, late = 0, inFlight = 0;
const t0 = Date.now();

function send(i: number): void {
  inFlight++;
  sent++;
  const req = request({ host, port: Number(portText), path: `/rate/${i}`, agent, timeout: 5000 }, (res) => {
    res.resume();
    res.on('end', () => { inFlight--; if (res.statusCode === 200) answered++; else errors++; });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => { inFlight--; errors++; });
  req.end();
}

await new Promise<void>((resolve) => {
  let due = 0;
  const tick = setInterval(() => {
    const elapsed = Math.min(seconds, (Date.now() - t0) / 1000);
    const target = Math.floor(elapsed * rate);
    for (; due < target; due++) {
      if (inFlight >= maxWaiting) late++;
      else send(due);
    }
    if (elapsed >= seconds) { clearInterval(tick); resolve(); }
  }, 5);
});
for (let i = 0; i < 500 && inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
agent.destroy();
process.stdout.write(`${JSON.stringify({ sent, answered, errors, late, seconds: (Date.now() - t0) / 1000 })}\n`);

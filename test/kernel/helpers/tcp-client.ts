// Test peer: connect to host:port N times (sequentially, or C at a time), optionally from given
// local ports, and print one JSON line per connection: {localPort, seen} where seen is what the
// server said it saw as our address.
import { connect } from 'node:net';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const host = opt('host', '127.0.0.1');
const port = Number(opt('port', '8080'));
const count = Number(opt('count', '1'));
const concurrency = Number(opt('concurrency', '1'));
const ports = opt('ports', '').split(',').filter(Boolean).map(Number);

function once(localPort?: number): Promise<{ localPort: number; seen: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localPort });
    let data = '';
    let lp = 0;
    s.on('connect', () => { lp = s.localPort ?? 0; });
    s.on('data', (d) => { data += d; });
    s.on('end', () => resolve({ localPort: lp, seen: data.trim() }));
    s.on('error', reject);
  });
}

async function main(): Promise<void> {
  const total = ports.length || count;
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const r = await once(ports[i]);
      process.stdout.write(`${JSON.stringify(r)}\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

main().catch((e) => { process.stderr.write(`${e.message}\n`); process.exit(1); });

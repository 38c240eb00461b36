// Test peer: connect to host:port N times (--count) or from given local ports (--ports a,b,c or
// --port-range A-B), optionally from a chosen local address (--bind) and speaking HTTP/1.0
// (--http), C at a time (--concurrency); print one JSON line per connection: {localPort, seen}
// where seen is what the server said it saw as our address ("addr port").
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
const range = opt('port-range', '').split('-').filter(Boolean).map(Number);
const ports = range.length === 2
  ? Array.from({ length: range[1] - range[0] + 1 }, (_, i) => range[0] + i)
  : opt('ports', '').split(',').filter(Boolean).map(Number);
const bind = opt('bind', '');
const http = args.includes('--http');

function once(localPort?: number): Promise<{ localPort: number; seen: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localPort, ...(bind && { localAddress: bind }) });
    let data = '';
    let lp = 0;
    s.setTimeout(10000, () => s.destroy(new Error(`timeout talking to ${host}:${port} from port ${localPort ?? '?'}`)));
    s.on('connect', () => {
      lp = s.localPort ?? 0;
      if (http) s.write(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
    });
    s.on('data', (d) => { data += d; });
    s.on('end', () => {
      const body = http ? data.slice(data.indexOf('\r\n\r\n') + 4) : data;
      resolve({ localPort: lp, seen: body.trim() });
    });
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

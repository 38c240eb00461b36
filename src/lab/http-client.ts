// A lab client: COUNT requests to HOST:PORT, one new connection each (so each is balanced on its
// own), printing per request one JSON line: the client's own endpoint and the server's answer.
//   node http-client.js HOST PORT COUNT
import { request } from 'node:http';

const [host = '', portText = '80', countText = '1'] = process.argv.slice(2);

function endpoint(addr: string | undefined, port: number | undefined): string {
  const a = (addr ?? '?').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

function once(): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(portText), path: '/', agent: false, headers: { connection: 'close' }, timeout: 5000 });
    let client = '';
    req.on('socket', (s) => s.on('connect', () => { client = endpoint(s.localAddress, s.localPort); }));
    req.on('timeout', () => req.destroy(new Error(`no answer from ${host}:${portText} within 5 s`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        try {
          resolve({ client, ...JSON.parse(body) });
        } catch {
          reject(new Error(`not a lab server's answer: ${body.slice(0, 80)}`));
        }
      });
    });
    req.end();
  });
}

for (let i = 0; i < Number(countText); i++) {
  try {
    process.stdout.write(`${JSON.stringify(await once())}\n`);
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
    process.exitCode = 1;
  }
}

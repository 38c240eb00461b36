// Test client for `tcplens http` kernel tests, run inside a client namespace:
//   node http-load.js HOST PORT COUNT keepalive|fresh PREFIX
// COUNT GET requests with paths PREFIX-0, PREFIX-1, ..., over ONE keep-alive connection or a fresh
// connection each; prints one JSON line per request: the path, the status, the body's server
// name and the peer its socket saw (a lab server or pod says both), in the order sent.
import { Agent, request } from 'node:http';

const [host = '', portText = '80', countText = '1', mode = 'fresh', prefix = '/r'] = process.argv.slice(2);
const agent = mode === 'keepalive' ? new Agent({ keepAlive: true, maxSockets: 1 }) : undefined;

function once(path: string): Promise<{ path: string; status: number; server: string | null; peer: string | null }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(portText), path, agent: agent ?? false, headers: agent ? {} : { connection: 'close' }, timeout: 5000 });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${host}:${portText}`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        let answer: { server?: string; peer?: string } = {};
        try { answer = JSON.parse(body) as typeof answer; } catch { /* not a lab server */ }
        resolve({ path, status: res.statusCode ?? 0, server: answer.server ?? null, peer: answer.peer ?? null });
      });
    });
    req.end();
  });
}

for (let i = 0; i < Number(countText); i++) {
  process.stdout.write(`${JSON.stringify(await once(`${prefix}-${i}`))}\n`);
}
agent?.destroy();

// tcplens probe against loopback servers that do not answer properly: one that accepts and never
// answers (each request TCPLENS_ERR_TIMEOUT after --timeout, the run bounded by it), one that
// hangs up half way through its answer (TCPLENS_ERR_HTTP); exit 1 either way, every request
// still has its row and the summary counts them.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { runTcplens } from '../kernel/helpers/tcplens-cli.js';

const T = { timeout: 30000 };

async function tcpServer(onConn: (s: Socket) => void): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => { sockets.push(s); s.on('error', () => {}); onConn(s); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, sockets };
}

function parse(stdout: string): { rows: Record<string, unknown>[]; summary: Record<string, unknown> } {
  const rows = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { rows, summary: rows.pop()!.summary as Record<string, unknown> };
}

test('a server that accepts and never answers: TCPLENS_ERR_TIMEOUT per request after --timeout, exit 1', T, async () => {
  const { server, port, sockets } = await tcpServer(() => {});
  try {
    const t0 = Date.now();
    const r = await runTcplens(['probe', `http://127.0.0.1:${port}/`, '--count', '4', '--concurrency', '4', '--timeout', '300ms', '--json']);
    const took = Date.now() - t0;
    assert.equal(r.code, 1, r.stderr);
    const { rows, summary } = parse(r.stdout);
    assert.deepEqual(rows.map((x) => [x.status, x.latency_ms, x.error]), Array(4).fill([null, null, 'TCPLENS_ERR_TIMEOUT']));
    assert.deepEqual([summary.sent, summary.answered, summary.errors, summary.p50_ms], [4, 0, 4, null]);
    assert.ok(took < 10000, `four concurrent 300 ms timeouts took ${took} ms`);
    assert.match(r.stderr, /4 sent, 0 answered, 4 errors; latency p50 - ms/);
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test('a server that hangs up half way through its answer: TCPLENS_ERR_HTTP, exit 1', T, async () => {
  const { server, port } = await tcpServer((s) => {
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it'));
  });
  try {
    const r = await runTcplens(['probe', `http://127.0.0.1:${port}/`, '--count', '2', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const { rows, summary } = parse(r.stdout);
    assert.deepEqual(rows.map((x) => x.error), ['TCPLENS_ERR_HTTP', 'TCPLENS_ERR_HTTP']);
    assert.deepEqual([summary.sent, summary.errors], [2, 2]);
  } finally {
    server.close();
  }
});

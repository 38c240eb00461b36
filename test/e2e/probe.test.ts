// tcplens probe against a real HTTP server on loopback: every request carries its own
// <run>-<seq> tag, --rate paces, a port nobody listens on gives coded errors and exit 1, bad
// usage exit 2.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { runTcplens } from '../kernel/helpers/tcplens-cli.js';

const T = { timeout: 30000 };

async function echoServer(): Promise<{ server: Server; port: number; tags: string[] }> {
  const tags: string[] = [];
  const server = createServer((req, res) => {
    tags.push(String(req.headers['x-tcplens-probe'] ?? req.headers['x-my-tag'] ?? ''));
    res.end(JSON.stringify({ server: 'echo' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, tags };
}

test('every request carries its own run-seq tag; JSON lines and a summary', T, async () => {
  const { server, port, tags } = await echoServer();
  try {
    const r = await runTcplens(['probe', `http://127.0.0.1:${port}/x`, '--count', '20', '--concurrency', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const summary = lines.pop().summary;
    assert.equal(lines.length, 20);
    const run = summary.run as string;
    assert.match(run, /^[0-9a-f]{8}$/);
    assert.deepEqual([...tags].sort(), Array.from({ length: 20 }, (_, i) => `${run}-${i}`).sort(), 'the server saw each tag once');
    assert.ok(lines.every((l) => l.status === 200 && l.server === 'echo' && l.error === null && l.latency_ms >= 0));
    assert.deepEqual([summary.sent, summary.answered, summary.errors], [20, 20, 0]);
    assert.match(r.stderr, new RegExp(`run ${run}: 20 sent, 20 answered, 0 errors`));
  } finally {
    server.close();
  }
});

test('--rate paces the run; --header names the tag', T, async () => {
  const { server, port, tags } = await echoServer();
  try {
    const t0 = Date.now();
    const r = await runTcplens(['probe', `http://127.0.0.1:${port}/`, '--count', '6', '--rate', '10', '--header', 'X-My-Tag']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 >= 500, 'six requests at 10/s take at least half a second');
    assert.equal(tags.filter((t) => /^[0-9a-f]{8}-\d$/.test(t)).length, 6);
    assert.match(r.stdout, /^PROBE\s+STATUS\s+MS\s+SERVER\s+ERROR/);
  } finally {
    server.close();
  }
});

test('a URL that does not answer: each request a coded error, exit 1; bad usage: exit 2', T, async () => {
  const { server, port } = await echoServer();
  server.close(); // nobody listens there now
  const r = await runTcplens(['probe', `http://127.0.0.1:${port}/`, '--count', '3', '--json']);
  assert.equal(r.code, 1);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.slice(0, 3).map((l) => l.error), ['TCPLENS_ERR_REFUSED', 'TCPLENS_ERR_REFUSED', 'TCPLENS_ERR_REFUSED']);
  for (const [args, code] of [[['probe'], 'TCPLENS_ERR_BAD_FLAG'], [['probe', 'not a url'], 'TCPLENS_ERR_BAD_TARGET'],
    [['probe', 'https://x/'], 'TCPLENS_ERR_BAD_TARGET'], [['probe', 'http://x/', '--count', '0'], 'TCPLENS_ERR_BAD_FLAG']] as const) {
    const bad = await runTcplens([...args]);
    assert.equal(bad.code, 2, args.join(' '));
    assert.match(bad.stderr, new RegExp(`${code}:`));
  }
});

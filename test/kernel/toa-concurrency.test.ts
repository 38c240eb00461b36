// Many connections at once, each naming a different real client (chosen by the client's local
// port through the writer's by_port map): every connection must report its own client, never
// another's, over IPv4 and IPv6, for IPv4 and IPv6 clients, on dual-stack and IPv4-only sockets.
// The TOA goes on the SYN only here, so the saved-SYN path is what carries it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { SERVERS, ToaHarness, WRITE_SYN, claimed, shown, type Seen } from './helpers/toa-harness.js';

function expectOwnClients(seen: Seen[], want: Map<number, string>, what: string): void {
  assert.equal(seen.length, want.size, `${what}: every connection completed`);
  const wrong = seen.filter((r) => r.seen !== want.get(r.localPort));
  assert.deepEqual(wrong.slice(0, 5).map((r) => `${r.localPort}: saw ${r.seen}, expected ${want.get(r.localPort)}`), [], `${what}: ${wrong.length} connections got a wrong client`);
}

test('concurrent connections from many clients each get their own client', async (t) => {
  const h = new ToaHarness('con');
  t.after(() => h.dispose());
  const w = h.writer(WRITE_SYN);
  h.enable(['--save-syn']); // the writer puts the TOA on the SYN only
  await h.serve(SERVERS.nodeTcp(9000, '::'));
  await h.serve(SERVERS.nodeTcp(9001, '0.0.0.0'));

  // Over IPv4: IPv4 clients (254/8) and IPv6 clients (254/20) mixed, 600 connections, 64 at a time.
  const v4 = new Map<number, string>();
  for (let i = 0; i < 600; i++) {
    const port = 40000 + i;
    const family = i % 3 === 2 ? 6 : 4;
    const c = claimed(i, family);
    w.set(port, c, 254);
    v4.set(port, shown(c, true));
  }
  const seen4 = await h.connect(['--host', h.server.ip4, '--port', '9000', '--ports', [...v4.keys()].join(','), '--concurrency', '64']);
  expectOwnClients(seen4, v4, 'IPv4 transport, dual-stack server');

  // Over IPv6: IPv6 clients (253/20) and IPv4 clients (254/8) mixed.
  const v6 = new Map<number, string>();
  for (let i = 0; i < 400; i++) {
    const port = 41000 + i;
    const family = i % 4 === 3 ? 4 : 6;
    const c = claimed(5000 + i, family);
    w.set(port, c);
    v6.set(port, shown(c, true));
  }
  const seen6 = await h.connect(['--host', h.server.ip6, '--port', '9000', '--ports', [...v6.keys()].join(','), '--concurrency', '64']);
  expectOwnClients(seen6, v6, 'IPv6 transport, dual-stack server');

  // An IPv4-only socket: IPv4 clients are rewritten; an IPv6 client cannot be expressed there, so
  // the server keeps seeing the balancer (never a truncated or foreign address).
  const only4 = new Map<number, string>();
  for (let i = 0; i < 200; i++) {
    const port = 42000 + i;
    const six = i % 10 === 9;
    const c = claimed(9000 + i, six ? 6 : 4);
    w.set(port, c, 254);
    only4.set(port, six ? `${h.client.ip4} ${port}` : shown(c, false));
  }
  const before = h.status().counters!;
  const seenOnly4 = await h.connect(['--host', h.server.ip4, '--port', '9001', '--ports', [...only4.keys()].join(','), '--concurrency', '64']);
  expectOwnClients(seenOnly4, only4, 'IPv4-only server');

  const c = h.status().counters!;
  assert.equal(c.unrepresentable - before.unrepresentable, 20);
  assert.equal(c.connections, 1200);
  assert.equal(c.stored, 1180);
  assert.equal(c.rewritten, 1180);
  assert.equal(c.untrusted + c.malformed + c.no_toa + c.store_failed, 0);
  h.disable();
});

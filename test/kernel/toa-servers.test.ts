// tcplens toa with unmodified servers (node:http, python3 http.server on IPv4 and dual-stack
// sockets): each connection through the trusted balancer reports its real client; a client that
// writes its own TOA straight to the server is not believed; after disable every server sees the
// balancer again and nothing of tcplens is attached or pinned.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SERVERS, ToaHarness, WRITE_ACK, claimed, shown, untrustedAddrs } from './helpers/toa-harness.js';

test('unmodified servers get the real client from accept()/getpeername(), only via the trusted balancer', async (t) => {
  const h = new ToaHarness('srv');
  t.after(() => h.dispose());
  // LVS writes the TOA on the handshake-completing ACK; a server already running when toa is
  // enabled (no saved SYNs on its listener) must get real clients from it too.
  const w = h.writer(WRITE_ACK);
  await h.serve(SERVERS.nodeHttp(8080));
  const enabled = h.enable();
  assert.match(enabled.stdout, /tcplens toa: enabled on/);
  await h.serve(SERVERS.pythonHttp(8081, 4));
  await h.serve(SERVERS.pythonHttp(8082, 6));

  const servers = [
    { name: 'node http (dual-stack)', port: 8080, dual: true },
    { name: 'python http.server (AF_INET)', port: 8081, dual: false },
    { name: 'python http.server (AF_INET6, dual-stack)', port: 8082, dual: true },
  ];
  let n = 0;
  let expectRewritten = 0;
  for (const s of servers) {
    const ports = [0, 1, 2].map((k) => 31000 + s.port - 8080 + 10 * k);
    ports.forEach((p) => w.set(p, claimed(n + p, 4)));
    const seen = await h.connect(['--host', h.server.ip4, '--port', String(s.port), '--ports', ports.join(','), '--http']);
    assert.equal(seen.length, ports.length);
    for (const r of seen) assert.equal(r.seen, shown(claimed(n + r.localPort, 4), s.dual), `${s.name}, client port ${r.localPort}`);
    expectRewritten += seen.length;
    n += 1000;
  }

  // IPv6 clients through an IPv6 balancer (TOA 253/20) on both dual-stack servers.
  for (const port of [8080, 8082]) {
    const ports = [32000 + port - 8080, 32100 + port - 8080];
    ports.forEach((p) => w.set(p, claimed(p, 6)));
    const seen = await h.connect(['--host', h.server.ip6, '--port', String(port), '--ports', ports.join(','), '--http']);
    for (const r of seen) assert.equal(r.seen, shown(claimed(r.localPort, 6), true), `IPv6 client on port ${port}`);
    expectRewritten += seen.length;
  }

  // A client outside the trusted ranges writes its own TOA straight to the servers: ignored.
  const rogue = untrustedAddrs(h);
  h.addClientAddress(rogue.ip4, rogue.ip6);
  const before = h.status().counters!;
  w.set(33001, { addr: '203.0.113.66', port: 6666 });
  w.set(33002, { addr: '203.0.113.66', port: 6666 });
  w.set(33003, { addr: '2001:db8::666', port: 6666 });
  const forged4 = await h.connect(['--host', h.server.ip4, '--port', '8080', '--ports', '33001', '--bind', rogue.ip4, '--http']);
  assert.equal(forged4[0].seen, `::ffff:${rogue.ip4} 33001`);
  const forgedPy = await h.connect(['--host', h.server.ip4, '--port', '8081', '--ports', '33002', '--bind', rogue.ip4, '--http']);
  assert.equal(forgedPy[0].seen, `${rogue.ip4} 33002`);
  const forged6 = await h.connect(['--host', h.server.ip6, '--port', '8082', '--ports', '33003', '--bind', rogue.ip6, '--http']);
  assert.equal(forged6[0].seen, `${rogue.ip6} 33003`);

  const s = h.status();
  assert.equal(s.enabled, true);
  assert.equal(s.complete, true);
  assert.equal(s.cgroup?.path, h.server.cgroup);
  assert.deepEqual(s.trusted, [`${h.client.ip4}/32`, `${h.client.ip6}/128`]);
  assert.deepEqual(s.dialects, ['254/8', '253/20', '254/20']);
  assert.deepEqual(s.problems, []);
  const c = s.counters!;
  assert.equal(c.untrusted - before.untrusted, 3, 'each forged TOA is counted as untrusted');
  assert.equal(c.stored - before.stored, 0, 'no forged TOA is stored');
  assert.equal(c.stored, expectRewritten);
  assert.equal(c.rewritten, expectRewritten);
  assert.ok(c.answers >= c.rewritten);
  assert.deepEqual(h.attachedTo(h.server.cgroup).sort(), ['toa_getpeername4', 'toa_getpeername6', 'toa_sockops']);

  // disable: everything goes, and the same traffic (TOAs still written) shows the balancer.
  const off = h.disable();
  assert.match(off.stdout, /tcplens toa: disabled/);
  assert.deepEqual(h.attachedTo(h.server.cgroup), []);
  assert.equal(existsSync(h.pinDir), false);
  for (const srv of servers) {
    const p = 34000 + srv.port - 8080;
    w.set(p, claimed(p, 4));
    const seen = await h.connect(['--host', h.server.ip4, '--port', String(srv.port), '--ports', String(p), '--http']);
    assert.equal(seen[0].seen, `${srv.dual ? '::ffff:' : ''}${h.client.ip4} ${p}`, `${srv.name} after disable`);
  }
  const again = h.cli(['disable']);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /not enabled.*nothing to do/);
});

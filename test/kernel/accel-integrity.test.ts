// tcplens accel under load: hundreds of local connections, random data of random sizes (1 byte to
// several MB) both ways at once, every byte checked by hash, and the counters proving the data
// took the fast path. Runs the enable/disable API directly; the CLI has its own test.
import test from 'node:test';
import assert from 'node:assert/strict';
import { enableAccel } from '../../src/capabilities/accel/accel.js';
import { accelStatus } from '../../src/capabilities/accel/status.js';
import { accelHarness, startTraffic } from './helpers/accel-harness.js';

for (const [family, host] of [['IPv4', '127.0.0.1'], ['IPv6', '::1'], ['v4-mapped (IPv6 listener, IPv4 client)', '127.0.0.1']] as const) {
  test(`integrity under load, ${family}: every byte arrives, and all of it was redirected`, async (t) => {
    const h = accelHarness('int');
    t.after(() => h.dispose());
    enableAccel({ cgroup: h.cgroup, ports: [] }, h.pinDir);
    const conns = family === 'IPv4' ? 320 : 60;
    const listenHost = family.startsWith('v4-mapped') ? '::' : undefined;
    const r = await startTraffic(h.cgroup, { conns, host, listenHost, size: 'mixed' }).result;
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.bad, []);
    assert.equal(r.conns, conns);
    const s = accelStatus(h.pinDir);
    const c = s.counters!;
    t.diagnostic(`${conns} connections, ${r.sent} bytes both ways in ${r.ms} ms; counters ${JSON.stringify(c)}`);
    assert.equal(c.inserted, 2 * conns, 'both ends of every connection went into the map');
    assert.equal(c.redirected_bytes, r.sent, 'every byte sent was redirected');
    assert.equal(c.passed_bytes + c.no_peer_bytes, 0);
    assert.equal(s.sockets, 0, 'closed sockets leave the map');
  });
}

// tcplens accel over time: connections from before enable are left alone; disable and re-enable
// while hundreds of connections are busy lose nothing; nothing stays attached or pinned after.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { disableAccel, enableAccel } from '../../src/capabilities/accel/accel.js';
import { accelStatus } from '../../src/capabilities/accel/status.js';
import { bpf } from '../../src/kernel/libbpf.js';
import { closeFd } from '../../src/kernel/pins.js';
import { accelHarness, pinsGone, startTraffic } from './helpers/accel-harness.js';

test('connections opened before enable are passed, never redirected; new ones are', async (t) => {
  const h = accelHarness('before');
  t.after(() => h.dispose());
  const early = startTraffic(h.cgroup, { conns: 40, host: '127.0.0.1', size: 'mixed', waitGo: true });
  t.after(() => early.proc.kill('SIGKILL'));
  await early.ready;
  enableAccel({ cgroup: h.cgroup, ports: [] }, h.pinDir);
  early.go();
  const r = await early.result;
  assert.deepEqual([r.errors, r.bad], [[], []]);
  let c = accelStatus(h.pinDir).counters!;
  assert.equal(c.established, 0, 'sock_ops never saw them established');
  assert.equal(c.redirected_bytes + c.passed_bytes + c.no_peer_bytes, 0, 'no sk_msg ran on them');
  const late = await startTraffic(h.cgroup, { conns: 10, host: '127.0.0.1', size: 'mixed' }).result;
  assert.deepEqual([late.errors, late.bad], [[], []]);
  c = accelStatus(h.pinDir).counters!;
  assert.equal(c.redirected_bytes, late.sent);
});

test('disable and re-enable while hundreds of connections are busy: nothing lost, nothing left', async (t) => {
  const h = accelHarness('busy');
  t.after(() => h.dispose());
  const first = enableAccel({ cgroup: h.cgroup, ports: [] }, h.pinDir);
  assert.equal(first.action, 'enabled');
  const busy = startTraffic(h.cgroup, { conns: 300, host: '127.0.0.1', size: 'mixed', durationMs: 6000, waitGo: true });
  t.after(() => busy.proc.kill('SIGKILL'));
  await busy.ready;
  busy.go();
  await sleep(1000);
  const st = accelStatus(h.pinDir);
  assert.equal(st.sockets, 600, 'both ends of every connection are in the map');
  const ids = st.programs.map((p) => p.linkId);
  // Another --port list on the same cgroup: swapped in place, the map and its sockets kept.
  const upd = enableAccel({ cgroup: h.cgroup, ports: [1, 2] }, h.pinDir);
  assert.equal(upd.action, 'updated');
  assert.equal(upd.keptSockets, true);
  const st2 = accelStatus(h.pinDir);
  assert.deepEqual(st2.ports, [1, 2]);
  assert.deepEqual(st2.programs.map((p) => p.linkId), ids, 'the same links, new programs');
  assert.equal(st2.sockets, 600);
  await sleep(1000);
  const before = accelStatus(h.pinDir).counters!.redirected_bytes;
  await sleep(500);
  assert.ok(accelStatus(h.pinDir).counters!.redirected_bytes > before, 'connections from before the update still take the fast path');
  const off = disableAccel(h.pinDir);
  assert.ok(off && off.removed.includes('socks'));
  assert.ok(pinsGone(h), 'no pin left');
  for (const id of ids) {
    const fd = bpf.link_get_fd_by_id(id) as number;
    if (fd >= 0) closeFd(fd);
    assert.ok(fd < 0, `link ${id} is gone`);
  }
  await sleep(1000);
  enableAccel({ cgroup: h.cgroup, ports: [] }, h.pinDir);
  const r = await busy.result;
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.bad, []);
  assert.equal(r.conns, 300);
  t.diagnostic(`${r.sent} bytes both ways over ${r.ms} ms, through update, disable and enable`);
  assert.equal(accelStatus(h.pinDir).sockets, 0, 'the old connections never re-entered the new map');
});

// tcplens accel through the real CLI: enable/status/disable as an operator runs them, the codes
// for bad input, and nothing attached or pinned after disable.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { bpf } from '../../src/kernel/libbpf.js';
import { closeFd } from '../../src/kernel/pins.js';
import { accelHarness } from './helpers/accel-harness.js';
import { cliForAnyone, runTcplens } from './helpers/tcplens-cli.js';

function assertCode(r: { code: number | null; stderr: string }, code: string): void {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^tcplens: ${code}: `, 'm'));
  assert.match(r.stderr, /hint: /);
}

test('accel CLI: enable, enable again (in place), status --json, disable; nothing left', async (t) => {
  const h = accelHarness('cli');
  t.after(() => h.dispose());
  process.env.TCPLENS_ACCEL_PIN_DIR = h.pinDir;
  t.after(() => { delete process.env.TCPLENS_ACCEL_PIN_DIR; });
  let r = await runTcplens(['accel', 'enable', '--cgroup', h.cgroup, '--port', '6379,80']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /tcplens accel: enabled on .* ports 6379, 80; pinned at/);
  r = await runTcplens(['accel', 'enable', '--cgroup', h.cgroup]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /reconfigured in place .* ports all/);
  r = await runTcplens(['accel', 'status', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.enabled, true);
  assert.equal(s.complete, true);
  assert.equal(s.cgroup.path, h.cgroup);
  assert.deepEqual(s.ports, []);
  assert.deepEqual(s.programs.map((p: { program: string }) => p.program), ['accel_msg', 'accel_sockops']);
  r = await runTcplens(['accel', 'status']);
  assert.match(r.stdout, /sockets +0 in the map/);
  r = await runTcplens(['accel', 'disable']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /disabled; removed active_ends, counters, msg, rodata, sock_state, sockops, socks/);
  assert.equal(existsSync(h.pinDir), false);
  for (const p of s.programs as { linkId: number; progId: number }[]) {
    for (const [get, id] of [[bpf.link_get_fd_by_id, p.linkId], [bpf.prog_get_fd_by_id, p.progId]] as const) {
      const fd = get(id) as number;
      if (fd >= 0) closeFd(fd);
      assert.ok(fd < 0, `id ${id} is gone`);
    }
  }
  r = await runTcplens(['accel', 'status']);
  assert.match(r.stdout, /not enabled/);
  r = await runTcplens(['accel', 'disable']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /not enabled .* nothing to do/);
});

test('accel CLI bad input: codes and hints, nothing pinned', async (t) => {
  const h = accelHarness('bad');
  t.after(() => h.dispose());
  process.env.TCPLENS_ACCEL_PIN_DIR = h.pinDir;
  t.after(() => { delete process.env.TCPLENS_ACCEL_PIN_DIR; });
  assertCode(await runTcplens(['accel', 'enable']), 'TCPLENS_ERR_NO_CGROUP');
  assertCode(await runTcplens(['accel', 'enable', '--cgroup', 'tcplens-no-such-cgroup']), 'TCPLENS_ERR_NO_CGROUP');
  assertCode(await runTcplens(['accel', 'enable', '--cgroup', h.cgroup, '--port', '70000']), 'TCPLENS_ERR_BAD_PORT');
  assertCode(await runTcplens(['accel', 'enable', '--cgroup', h.cgroup, '--bogus']), 'TCPLENS_ERR_UNKNOWN_FLAG');
  assertCode(await runTcplens(['accel', 'frobnicate']), 'TCPLENS_ERR_UNKNOWN_COMMAND');
  const anyone = cliForAnyone();
  try {
    assertCode(await runTcplens(['accel', 'enable', '--cgroup', h.cgroup], { uid: 65534, cli: anyone.cli }), 'TCPLENS_ERR_NOT_ROOT');
  } finally {
    anyone.dispose();
  }
  assert.equal(existsSync(h.pinDir), false);
});

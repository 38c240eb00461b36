// An enable interrupted half way (SIGTERM or SIGINT while its new links are attached and the old
// ones still run) leaves the old state or the new one, complete, never half; status says which.
// The real CLI is held at that point by TCPLENS_ACCEL_TEST_PAUSE_MS and signalled there.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { enableAccel } from '../../src/capabilities/accel/accel.js';
import { accelStatus } from '../../src/capabilities/accel/status.js';
import { createCgroup } from '../../src/kernel/cgroup.js';
import { accelHarness } from './helpers/accel-harness.js';
import { runTcplens, startTcplens } from './helpers/tcplens-cli.js';

/** Programs attached to a cgroup, by name (bpftool). */
function attached(cgroup: string): string[] {
  const rows = JSON.parse(execFileSync('bpftool', ['cgroup', 'show', cgroup, '--json'], { encoding: 'utf8' }).trim() || '[]') as { name?: string }[];
  return rows.map((r) => r.name ?? '?');
}

async function interruptedEnable(pinDir: string, args: string[], signal: NodeJS.Signals): Promise<number | null> {
  process.env.TCPLENS_ACCEL_PIN_DIR = pinDir;
  process.env.TCPLENS_ACCEL_TEST_PAUSE_MS = '1500';
  try {
    const run = await startTcplens(['accel', 'enable', ...args], /paused half way/);
    const r = await run.stop(signal);
    return r.code;
  } finally {
    delete process.env.TCPLENS_ACCEL_TEST_PAUSE_MS;
  }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} half way through a first enable: enabled completely, or nothing`, async (t) => {
    const h = accelHarness(`int-first-${signal}`);
    t.after(() => { delete process.env.TCPLENS_ACCEL_PIN_DIR; h.dispose(); });
    const code = await interruptedEnable(h.pinDir, ['--cgroup', h.cgroup], signal);
    const s = accelStatus(h.pinDir);
    t.diagnostic(`exit ${code}; enabled ${s.enabled}, complete ${s.complete}`);
    assert.deepEqual(s.problems, []);
    if (s.enabled) {
      assert.equal(s.complete, true);
      assert.equal(s.cgroup?.path, h.cgroup);
      assert.deepEqual(attached(h.cgroup), ['accel_sockops']);
    } else {
      assert.deepEqual(attached(h.cgroup), []);
    }
    const text = await runTcplens(['accel', 'status']);
    assert.match(text.stdout, s.enabled ? new RegExp(`enabled\\n  cgroup +${h.cgroup} `) : /not enabled/);
    assert.doesNotMatch(text.stdout, /INCOMPLETE|problem/);
  });

  test(`${signal} half way through moving accel to another cgroup: the old state or the new, never both or half`, async (t) => {
    const h = accelHarness(`int-move-${signal}`);
    const other = createCgroup(`tcplens-test-accel-${process.pid}-int-other-${signal}`);
    t.after(() => { delete process.env.TCPLENS_ACCEL_PIN_DIR; try { h.dispose(); } finally { other.remove(); } });
    enableAccel({ cgroup: h.cgroup, ports: [80] }, h.pinDir);
    const code = await interruptedEnable(h.pinDir, ['--cgroup', other.path], signal);
    const s = accelStatus(h.pinDir);
    t.diagnostic(`exit ${code}; now on ${s.cgroup?.path}, ports ${s.ports}`);
    assert.equal(s.enabled, true);
    assert.equal(s.complete, true);
    assert.deepEqual(s.problems, [], 'no stray new-* pins, no detached links');
    const moved = s.cgroup?.path === other.path;
    assert.ok(moved || s.cgroup?.path === h.cgroup, `on one of the two cgroups: ${s.cgroup?.path}`);
    assert.deepEqual(s.ports, moved ? [] : [80], 'the configuration of whichever state it is');
    assert.deepEqual([attached(h.cgroup), attached(other.path)], moved ? [[], ['accel_sockops']] : [['accel_sockops'], []],
      'sock_ops on exactly one cgroup');
    const text = await runTcplens(['accel', 'status']);
    assert.match(text.stdout, new RegExp(`cgroup +${moved ? other.path : h.cgroup} `));
    assert.doesNotMatch(text.stdout, /INCOMPLETE|problem/);
  });
}

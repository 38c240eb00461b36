// tcplens accel flags -> configuration -> rodata, without root or a kernel.
import test from 'node:test';
import assert from 'node:assert/strict';
import { accelRodata, checkAccelConfig } from '../../src/capabilities/accel/accel.js';
import { accelConfig, accelEnableFlags } from '../../src/cli/accel.js';
import { parseFlags } from '../../src/cli/flags.js';
import type { TcplensError } from '../../src/errors.js';

const cfg = (argv: string[]) => accelConfig(parseFlags(argv, accelEnableFlags, 'accel enable'));
const code = (c: string) => (e: TcplensError) => e.code === c && e.hint.length > 0;

test('--cgroup is required: redirection always names its scope', () => {
  assert.throws(() => cfg([]), code('TCPLENS_ERR_NO_CGROUP'));
  assert.throws(() => cfg(['--port', '80']), code('TCPLENS_ERR_NO_CGROUP'));
});

test('--port: repeatable, comma-separated, deduplicated, 1..65535, at most 16', () => {
  assert.deepEqual(cfg(['--cgroup', 'x', '--port', '80,443', '--port', '80']).ports, [80, 443]);
  assert.deepEqual(cfg(['--cgroup', 'x']).ports, []);
  for (const bad of ['0', '65536', 'http', '8.5', '1e3']) assert.throws(() => cfg(['--cgroup', 'x', '--port', bad]), code('TCPLENS_ERR_BAD_PORT'), bad);
  const many = Array.from({ length: 17 }, (_, i) => String(i + 1)).join(',');
  assert.throws(() => cfg(['--cgroup', 'x', '--port', many]), code('TCPLENS_ERR_BAD_PORT'));
  assert.throws(() => cfg(['--cgroup', 'x', 'extra']), code('TCPLENS_ERR_BAD_FLAG'));
  assert.throws(() => checkAccelConfig({ cgroup: 'x', ports: [70000] }), code('TCPLENS_ERR_BAD_PORT'));
});

test('rodata: port count and the ports as little-endian u16 in order', () => {
  const r = accelRodata([6379, 80]);
  assert.equal(r.port_count, 2);
  const img = r.ports as Uint8Array;
  assert.equal(img.length, 32);
  assert.deepEqual([...img.subarray(0, 5)], [0xeb, 0x18, 80, 0, 0]);
  assert.equal(accelRodata([]).port_count, 0);
});

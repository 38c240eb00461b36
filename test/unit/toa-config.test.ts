// tcplens toa enable's flags -> configuration: what is refused before anything touches the kernel.
import test from 'node:test';
import assert from 'node:assert/strict';
import { enableFlags, statusText, toaConfig } from '../../src/cli/toa.js';
import { parseFlags } from '../../src/cli/flags.js';
import type { TcplensError } from '../../src/errors.js';

const config = (argv: string[]) => toaConfig(parseFlags(argv, enableFlags, 'toa enable'));
const code = (argv: string[]) => {
  try {
    config(argv);
  } catch (e) {
    return (e as TcplensError).code;
  }
  return 'ok';
};

test('--trusted-lb is required, must parse, and must not trust everyone', () => {
  assert.equal(code([]), 'TCPLENS_ERR_BAD_CIDR');
  assert.equal(code(['--trusted-lb', '']), 'TCPLENS_ERR_BAD_CIDR');
  assert.equal(code(['--trusted-lb', 'lb.example']), 'TCPLENS_ERR_BAD_CIDR');
  assert.equal(code(['--trusted-lb', '10.0.0.0/33']), 'TCPLENS_ERR_BAD_CIDR');
  assert.equal(code(['--trusted-lb', '0.0.0.0/0']), 'TCPLENS_ERR_BAD_CIDR');
  assert.equal(code(['--trusted-lb', '::/0']), 'TCPLENS_ERR_BAD_CIDR');
  const many = Array.from({ length: 17 }, (_, i) => `10.0.${i}.0/24`).join(',');
  assert.equal(code(['--trusted-lb', many]), 'TCPLENS_ERR_BAD_CIDR');
  assert.equal(code(['--trusted-lb', '10.0.0.1', 'extra']), 'TCPLENS_ERR_BAD_FLAG');
});

test('dialects: defaults, additions, and refusals', () => {
  const c = config(['--trusted-lb', '10.0.0.0/24,fd00::1', '--toa', '200/8']);
  assert.deepEqual(c.trusted.map((t) => t.text), ['10.0.0.0/24', 'fd00::1']);
  assert.deepEqual(c.dialects.map((d) => `${d.kind}/${d.len}`), ['254/8', '253/20', '254/20', '200/8']);
  assert.equal(c.saveSyn, false, 'SYNs are kept only when asked');
  assert.equal(c.toaConflict, 'reject');
  const only = config(['--trusted-lb', '10.0.0.1', '--no-default-toa', '--toa', '200/8', '--save-syn', '--toa-conflict', 'first']);
  assert.deepEqual(only.dialects, [{ kind: 200, len: 8, family: 4 }]);
  assert.equal(only.saveSyn, true);
  assert.equal(only.toaConflict, 'first');
  assert.equal(code(['--trusted-lb', '10.0.0.1', '--toa', '254/9']), 'TCPLENS_ERR_BAD_TOA');
  assert.equal(code(['--trusted-lb', '10.0.0.1', '--toa', '2/8']), 'TCPLENS_ERR_BAD_TOA');
  assert.equal(code(['--trusted-lb', '10.0.0.1', '--no-default-toa']), 'TCPLENS_ERR_BAD_TOA');
});

test('status text says plainly when nothing is enabled, and flags an incomplete state', () => {
  const base = { enabled: false, complete: false, dir: '/sys/fs/bpf/tcplens/toa', busy: null, cgroup: null, programs: [],
    trusted: [], dialects: [], saveSyn: null, saveSynListeners: 0, toaConflict: null, counters: null, problems: [] };
  assert.match(statusText(base), /^tcplens toa: not enabled \(nothing pinned at \/sys\/fs\/bpf\/tcplens\/toa\)\n$/);
  const broken = statusText({ ...base, enabled: true, problems: ['link sockops is missing'] });
  assert.match(broken, /INCOMPLETE/);
  assert.match(broken, /problem\s+link sockops is missing/);
});

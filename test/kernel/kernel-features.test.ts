// Feature probes against the kernel they run on (here and in every kernel matrix guest): each
// answer is recorded for the matrix's table, and a kernel that lacks what accept needs gets
// TCPLENS_ERR_UNSUPPORTED naming the helper and the kernel needed, before anything is loaded.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { helperAvailable, kernelFunctionParams, kernelHasFunction, kprobesAvailable, requireHelpers } from '../../src/kernel/features.js';
import { acceptObject, requireAcceptKernel } from '../../src/capabilities/accept/attach-plan.js';
import { TcplensError } from '../../src/errors.js';
import { recordFeature } from '../matrix/record-feature.js';

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

test('probes answer, and are recorded for the matrix table', () => {
  for (const h of ['get_netns_cookie', 'get_socket_cookie', 'get_current_comm'] as const) {
    const found = helperAvailable('sock_ops', h);
    assert.equal(helperAvailable('sock_ops', h), found, 'cached answer is the same');
    recordFeature(`sock_ops calls bpf_${h}`, yesNo(found));
  }
  recordFeature('kfunc bpf_cast_to_kern_ctx', yesNo(kernelHasFunction('bpf_cast_to_kern_ctx')));
  recordFeature('kprobe PMU', yesNo(kprobesAvailable()));
  const params = kernelFunctionParams('inet_csk_accept');
  assert.ok(params === 2 || params === 4, `inet_csk_accept has 2 or 4 parameters in every kernel we know: ${params}`);
  recordFeature('inet_csk_accept parameters', String(params));
  assert.equal(acceptObject(), kernelHasFunction('bpf_cast_to_kern_ctx') ? 'accept' : 'accept-compat');
  // a probe leaves nothing loaded behind
  assert.doesNotMatch(execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' }), /tcplens_probe/);
});

test('accept on a kernel without bpf_get_netns_cookie in sock_ops: TCPLENS_ERR_UNSUPPORTED naming it and Linux >= 5.15', () => {
  if (helperAvailable('sock_ops', 'get_netns_cookie')) {
    assert.doesNotThrow(() => requireAcceptKernel());
    return;
  }
  assert.throws(() => requireAcceptKernel(), (e: unknown) => {
    assert.ok(e instanceof TcplensError);
    assert.equal(e.code, 'TCPLENS_ERR_UNSUPPORTED');
    assert.match(e.message, /sock_ops programs cannot call bpf_get_netns_cookie/);
    assert.match(e.hint ?? '', /Linux >= 5\.15/);
    return true;
  });
});

test('a helper a program type can never call is refused by the probe, with its coded error', () => {
  // bpf_get_current_comm in sock_ops: refused up to 6.12, allowed later; either way the error names it
  const ok = helperAvailable('sock_ops', 'get_current_comm');
  if (ok) assert.doesNotThrow(() => requireHelpers('test', 'sock_ops', ['get_current_comm']));
  else assert.throws(() => requireHelpers('test', 'sock_ops', ['get_current_comm']), { code: 'TCPLENS_ERR_UNSUPPORTED', message: /bpf_get_current_comm/ });
});

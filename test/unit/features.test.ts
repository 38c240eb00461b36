import test from 'node:test';
import assert from 'node:assert/strict';
import { requireBtf } from '../../src/kernel/features.js';
import { formatError } from '../../src/errors.js';

test('no BTF: TCPLENS_ERR_NO_BTF names the file and the kernel option', () => {
  assert.throws(() => requireBtf('/nonexistent/vmlinux'), (e: Error & { code?: string; hint?: string }) => {
    assert.equal(e.code, 'TCPLENS_ERR_NO_BTF');
    assert.match(e.message, /\/nonexistent\/vmlinux/);
    assert.match(e.hint ?? '', /CONFIG_DEBUG_INFO_BTF/);
    assert.doesNotMatch(formatError(e), /^\s+at /m);
    return true;
  });
});

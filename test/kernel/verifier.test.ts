// A program the verifier refuses: the user gets TCPLENS_ERR_VERIFIER naming the program and the
// verifier's own complaint; the whole log stays in `detail` for --verbose; nothing stays loaded.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { objectPath } from '../../src/kernel/paths.js';
import { formatError, TcplensError } from '../../src/errors.js';

test('a verifier rejection is summarised, with the full log on demand', () => {
  const obj = BpfObject.open(objectPath('test/kernel/fixtures/verifier-reject'));
  try {
    assert.throws(() => obj.load(), (e: unknown) => {
      assert.ok(e instanceof TcplensError);
      assert.equal(e.code, 'TCPLENS_ERR_VERIFIER');
      assert.match(e.message, /reads_past_value/);
      assert.match(e.message, /(unbounded|invalid|min value|out of bounds|outside)/i);
      assert.ok(e.message.length < 400, 'a summary, not the log');
      assert.match(e.detail ?? '', /processed \d+ insns|^\d+: \(/m, 'the full log is kept');
      const short = formatError(e, false);
      assert.match(short, /--verbose/);
      assert.doesNotMatch(short, /^\s+at /m, 'no stack trace');
      assert.ok(formatError(e, true).length > short.length);
      return true;
    });
  } finally {
    obj.close();
  }
  assert.doesNotMatch(execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' }), /reads_past_value/);
});

test('a missing object is TCPLENS_ERR_NOT_BUILT with a hint to build', () => {
  assert.throws(() => BpfObject.open(objectPath('src/capabilities/nope/nope')), { code: 'TCPLENS_ERR_NOT_BUILT' });
});

test('EINVAL (a bad argument: a map of size 0) is a load error with libbpf\'s words, not "unsupported"', () => {
  const obj = BpfObject.open(objectPath('src/capabilities/accept/accept'));
  try {
    obj.setMaxEntries('merge', 0);
    assert.throws(() => obj.load(), (e: unknown) => {
      assert.ok(e instanceof TcplensError);
      assert.equal(e.code, 'TCPLENS_ERR_LOAD');
      assert.match(e.message, /Invalid argument/);
      return true;
    });
  } finally {
    obj.close();
  }
});

// --netns arguments -> namespaces, without root: a name means /run/netns/NAME, digits a pid, a
// slash a path; what is not a network namespace mount or link (missing, a plain file) is
// TCPLENS_ERR_NO_NETNS; the same namespace under two spellings is refused.
import test from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { netnsPathOf, resolveNetns, resolveNetnsList } from '../../src/kernel/netns.js';

const T = { timeout: 10000 };

test('a name, a pid, a path', T, () => {
  assert.equal(netnsPathOf('blue'), '/run/netns/blue');
  assert.equal(netnsPathOf('1234'), '/proc/1234/ns/net');
  assert.equal(netnsPathOf('/var/run/netns/x'), '/var/run/netns/x');
  for (const bad of ['a b', 'x;y', '']) assert.throws(() => netnsPathOf(bad), { code: 'TCPLENS_ERR_BAD_FLAG' }, bad);
});

test('our own namespace by pid and by path: its inode, the name as given', T, () => {
  const inode = statSync('/proc/self/ns/net').ino;
  assert.deepEqual(resolveNetns(String(process.pid)), { name: String(process.pid), path: `/proc/${process.pid}/ns/net`, inode });
  assert.equal(resolveNetns('/proc/self/ns/net').inode, inode);
});

test('not a namespace: TCPLENS_ERR_NO_NETNS with a hint', T, () => {
  for (const spec of ['tcplens-no-such-ns', '/proc/999999999/ns/net', '/etc/hostname']) {
    assert.throws(() => resolveNetns(spec), (e: { code: string; message: string; hint: string }) =>
      e.code === 'TCPLENS_ERR_NO_NETNS' && e.message.includes(spec) && /ip netns list/.test(e.hint), spec);
  }
});

test('the same namespace twice (by pid and by path) is refused', T, () => {
  assert.throws(() => resolveNetnsList([String(process.pid), '/proc/self/ns/net']),
    { code: 'TCPLENS_ERR_BAD_FLAG', message: new RegExp(`--netns ${process.pid} and --netns /proc/self/ns/net are the same namespace`) });
  assert.equal(resolveNetnsList([String(process.pid)]).length, 1);
});

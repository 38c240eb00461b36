import test from 'node:test';
import assert from 'node:assert/strict';
import { formatAddr, formatEndpoint, parseAddr, parseCidr, cidrContains } from '../../src/net/addr.js';

test('addresses round-trip and IPv6 is printed in RFC 5952 form', () => {
  for (const a of ['10.0.0.1', '255.255.255.255', '0.0.0.0', 'fd00::1', '::1', '2001:db8:0:1:1:1:1:1', 'fe80::', '::']) {
    const p = parseAddr(a)!;
    assert.equal(formatAddr(p.bytes, p.family), a);
  }
  assert.equal(formatAddr(parseAddr('2001:0db8:0000:0000:0000:0000:0000:0001')!.bytes, 6), '2001:db8::1');
  assert.equal(formatAddr(parseAddr('::ffff:10.1.2.3')!.bytes, 6), '::ffff:a01:203');
  assert.equal(parseAddr('nope'), null);
  assert.equal(parseAddr('10.0.0.256'), null);
});

test('endpoints: IPv4 "a:port", IPv6 "[a]:port"', () => {
  assert.equal(formatEndpoint(parseAddr('10.5.12.70')!.bytes, 4, 37325), '10.5.12.70:37325');
  assert.equal(formatEndpoint(parseAddr('fd00::2')!.bytes, 6, 80), '[fd00::2]:80');
});

test('CIDRs: match by prefix, per family; bad ones rejected with TCPLENS_ERR_BAD_CIDR', () => {
  const c = parseCidr('10.1.0.0/16');
  assert.ok(cidrContains(c, 4, parseAddr('10.1.200.3')!.bytes));
  assert.ok(!cidrContains(c, 4, parseAddr('10.2.0.1')!.bytes));
  assert.ok(!cidrContains(c, 6, parseAddr('::a01:0')!.bytes));
  const h = parseCidr('192.0.2.7');
  assert.equal(h.prefix, 32);
  assert.ok(cidrContains(h, 4, parseAddr('192.0.2.7')!.bytes));
  assert.ok(!cidrContains(h, 4, parseAddr('192.0.2.8')!.bytes));
  const s = parseCidr('10.1.2.3/20');
  assert.deepEqual([...s.net.subarray(0, 4)], [10, 1, 0, 0], 'host bits are cleared');
  const v6 = parseCidr('fd00:1::/32');
  assert.ok(cidrContains(v6, 6, parseAddr('fd00:1:ffff::9')!.bytes));
  assert.ok(!cidrContains(v6, 6, parseAddr('fd00:2::9')!.bytes));
  assert.ok(cidrContains(parseCidr('0.0.0.0/0'), 4, parseAddr('8.8.8.8')!.bytes));
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'fd00::/129', 'x', '', '10.0.0.1/8/1', '10.0.0.0/-1', '10.0.0.0/a']) {
    assert.throws(() => parseCidr(bad), { code: 'TCPLENS_ERR_BAD_CIDR' }, bad);
  }
});

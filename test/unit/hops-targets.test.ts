// Target parsing, the TTL arithmetic and the --count summary: pure, no root.
import test from 'node:test';
import assert from 'node:assert/strict';
import { checkTargetCount, MAX_TARGETS, parseTarget } from '../../src/net/target.js';
import { hopDistance, initialTtl } from '../../src/net/ttl.js';
import { classifyErrno, outcome } from '../../src/capabilities/hops/hops.js';
import { combine, spread } from '../../src/capabilities/hops/run.js';
import { parseAddr } from '../../src/net/addr.js';
import { TcplensError } from '../../src/errors.js';

test('every written form of a target parses to host, port and family', () => {
  const cases: [string, { family: 0 | 4 | 6; host: string; port: number; literal: boolean }][] = [
    ['tcp4://example.org:80', { family: 4, host: 'example.org', port: 80, literal: false }],
    ['tcp6://example.org:443', { family: 6, host: 'example.org', port: 443, literal: false }],
    ['tcp6://[fd00::1]:8080', { family: 6, host: 'fd00::1', port: 8080, literal: true }],
    ['TCP4://10.1.2.3:65535', { family: 4, host: '10.1.2.3', port: 65535, literal: true }],
    ['localhost:1', { family: 0, host: 'localhost', port: 1, literal: false }],
    ['10.0.0.1:22', { family: 4, host: '10.0.0.1', port: 22, literal: true }],
    ['[::1]:22', { family: 6, host: '::1', port: 22, literal: true }],
    ['a-b.c_d.example.:25', { family: 0, host: 'a-b.c_d.example.', port: 25, literal: false }],
  ];
  for (const [text, want] of cases) assert.deepEqual(parseTarget(text), { text, ...want }, text);
});

test('bad targets: each its own code and a message that says what is wrong', () => {
  const cases: [string, string, RegExp][] = [
    ['example.org', 'TCPLENS_ERR_BAD_TARGET', /host:port/],
    ['example.org:', 'TCPLENS_ERR_BAD_PORT', /not a number/],
    ['example.org:0', 'TCPLENS_ERR_BAD_PORT', /port 0 is outside/],
    ['example.org:65536', 'TCPLENS_ERR_BAD_PORT', /65536 is outside/],
    ['example.org:123456', 'TCPLENS_ERR_BAD_PORT', /not a number/],
    ['example.org:-1', 'TCPLENS_ERR_BAD_PORT', /not a number/],
    ['udp://example.org:53', 'TCPLENS_ERR_BAD_TARGET', /unknown scheme 'udp'/],
    ['http://example.org:80', 'TCPLENS_ERR_BAD_TARGET', /unknown scheme/],
    ['tcp4://[fd00::1]:80', 'TCPLENS_ERR_BAD_TARGET', /tcp4:\/\/ with an IPv6 address/],
    ['tcp6://10.0.0.1:80', 'TCPLENS_ERR_BAD_TARGET', /tcp6:\/\/ with an IPv4 address/],
    ['fd00::1:80', 'TCPLENS_ERR_BAD_TARGET', /needs brackets/],
    ['tcp4://fd00::1:80', 'TCPLENS_ERR_BAD_TARGET', /needs brackets/],
    ['[10.0.0.1]:80', 'TCPLENS_ERR_BAD_TARGET', /not an IPv6 address/],
    ['[fd00::1:80', 'TCPLENS_ERR_BAD_TARGET', /host:port/],
    ['bad host!:80', 'TCPLENS_ERR_BAD_TARGET', /not a host name/],
    ['10.0.0.256:80', 'TCPLENS_ERR_BAD_TARGET', /not a host name/],
    [':80', 'TCPLENS_ERR_BAD_TARGET', /not a host name/],
    ['', 'TCPLENS_ERR_BAD_TARGET', /host:port/],
    [`${'a'.repeat(64)}.example:80`, 'TCPLENS_ERR_BAD_TARGET', /not a host name/],
  ];
  for (const [text, code, msg] of cases) {
    assert.throws(() => parseTarget(text), (e: unknown) => {
      assert.ok(e instanceof TcplensError, text);
      assert.equal(e.code, code, text);
      assert.match(e.message, msg, text);
      assert.match(e.hint, /tcp4:\/\/host:port/);
      return true;
    });
  }
});

test('the target list is refused as a whole when empty or over the limit', () => {
  assert.throws(() => checkTargetCount(0), { code: 'TCPLENS_ERR_BAD_TARGET', message: /no target/ });
  assert.throws(() => checkTargetCount(MAX_TARGETS + 1), { code: 'TCPLENS_ERR_BAD_TARGET', message: new RegExp(`at most ${MAX_TARGETS}`) });
  checkTargetCount(MAX_TARGETS);
});

test('initial TTL is the smallest of 32, 64, 128, 255 not below the TTL; distance is the gap', () => {
  const cases: [number, number, number][] = [
    [1, 32, 31], [32, 32, 0], [33, 64, 31], [61, 64, 3], [64, 64, 0], [65, 128, 63], [125, 128, 3],
    [128, 128, 0], [129, 255, 126], [252, 255, 3], [255, 255, 0], [0, 32, 32],
  ];
  for (const [ttl, start, hops] of cases) {
    assert.equal(initialTtl(ttl), start, `initialTtl(${ttl})`);
    assert.equal(hopDistance(ttl), hops, `hopDistance(${ttl})`);
  }
  for (const bad of [-1, 256, 1.5, NaN]) assert.throws(() => initialTtl(bad), RangeError);
});

test('connect errnos map to statuses and codes', () => {
  assert.deepEqual(classifyErrno(0), { status: 'open', error: null });
  assert.deepEqual(classifyErrno(111), { status: 'refused', error: 'TCPLENS_ERR_REFUSED' });
  assert.deepEqual(classifyErrno(113), { status: 'unreachable', error: 'TCPLENS_ERR_UNREACHABLE' });
  assert.deepEqual(classifyErrno(101), { status: 'unreachable', error: 'TCPLENS_ERR_UNREACHABLE' });
  assert.deepEqual(classifyErrno(22), { status: 'unreachable', error: 'TCPLENS_ERR_UNREACHABLE' }, 'a local blackhole route');
  assert.deepEqual(classifyErrno(110), { status: 'timeout', error: 'TCPLENS_ERR_TIMEOUT' });
  assert.deepEqual(classifyErrno(24), { status: 'error', error: 'TCPLENS_ERR_SYSCALL' });
});

test('--count: one result per address with the documented fields, medians and min/median/max', () => {
  const addr = { ...parseAddr('fd00::1')!, port: 80 };
  const one = combine('tcp6://[fd00::1]:80', addr, [outcome('open', null, 61, 1.5)]);
  assert.deepEqual(Object.keys(one.result), ['target', 'address', 'family', 'status', 'ttl', 'initial_ttl', 'hops', 'connect_ms', 'error']);
  assert.deepEqual(one.result, { target: 'tcp6://[fd00::1]:80', address: '[fd00::1]:80', family: 6, status: 'open', ttl: 61, initial_ttl: 64, hops: 3, connect_ms: 1.5, error: null });

  const outs = [outcome('open', null, 61, 3), outcome('timeout', 'TCPLENS_ERR_TIMEOUT', null, null, 'no reply'),
    outcome('open', null, 60, 1), outcome('open', null, 62, 2)];
  const many = combine('x:80', addr, outs).result;
  assert.equal(many.status, 'open');
  assert.equal(many.error, null);
  assert.equal(many.ttl, 61);
  assert.equal(many.hops, 3);
  assert.equal(many.connect_ms, 2);
  assert.equal(many.probes, 4);
  assert.equal(many.replies, 3);
  assert.deepEqual(many.stats, { ttl: { min: 60, median: 61, max: 62 }, hops: { min: 2, median: 3, max: 4 }, connect_ms: { min: 1, median: 2, max: 3 } });

  const none = combine('x:80', addr, [outcome('timeout', 'TCPLENS_ERR_TIMEOUT', null, null), outcome('timeout', 'TCPLENS_ERR_TIMEOUT', null, null)]).result;
  assert.equal(none.status, 'timeout');
  assert.equal(none.error, 'TCPLENS_ERR_TIMEOUT');
  assert.equal(none.hops, null);
  assert.deepEqual(none.stats, { ttl: null, hops: null, connect_ms: null });
  assert.deepEqual(spread([5, 1, 3, 2]), { min: 1, median: 2, max: 5 }, 'lower median of an even count');
});

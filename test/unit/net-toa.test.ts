import test from 'node:test';
import assert from 'node:assert/strict';
import { parseToaOptions, parseDialect, dialectTable, encodeToa, decodeToaKoValue, DEFAULT_DIALECTS } from '../../src/net/toa.js';
import { formatAddr, parseAddr } from '../../src/net/addr.js';
import { toaCases } from '../cases/toa-cases.js';

for (const c of toaCases) {
  test(`TOA codec: ${c.name}`, () => {
    const r = parseToaOptions(Uint8Array.from(c.opts));
    assert.equal(r.status, c.status);
    if (c.status !== 'found' && c.status !== 'conflict') return;
    assert.equal(r.kind, c.kind);
    assert.equal(r.len, c.len);
    assert.equal(r.family, c.family);
    assert.equal(r.port, c.port);
    assert.equal(formatAddr(r.addr!, r.family!), c.addr);
  });
}

test('an extra dialect (200/8) is found once it is in the table', () => {
  const opts = Uint8Array.from([200, 8, 0, 80, 10, 0, 0, 1]);
  assert.equal(parseToaOptions(opts).status, 'none');
  const r = parseToaOptions(opts, dialectTable(['200/8']));
  assert.equal(r.status, 'found');
  assert.equal(formatAddr(r.addr!, 4), '10.0.0.1');
});

test('encodeToa writes what parseToaOptions reads, for every default dialect', () => {
  for (const d of DEFAULT_DIALECTS) {
    const a = parseAddr(d.family === 4 ? '203.0.113.7' : '2001:db8::7')!;
    const bytes = encodeToa(d.kind, d.family, a.bytes, 40000);
    assert.equal(bytes.length, d.len);
    const r = parseToaOptions(bytes);
    assert.equal(r.status, 'found');
    assert.equal(r.kind, d.kind);
    assert.equal(r.port, 40000);
    assert.deepEqual(r.addr, a.bytes);
  }
});

test('dialects: parsing, defaults, and bad ones rejected with TCPLENS_ERR_BAD_TOA', () => {
  assert.deepEqual(parseDialect('200/8'), { kind: 200, len: 8, family: 4 });
  assert.deepEqual(parseDialect('254/20'), { kind: 254, len: 20, family: 6 });
  assert.equal(dialectTable([]).length, 3);
  assert.equal(dialectTable(['254/8']).length, 3, 'a default given again is not repeated');
  assert.deepEqual(dialectTable(['200/8'], false), [{ kind: 200, len: 8, family: 4 }]);
  for (const bad of ['254', '254/9', '1/8', '300/8', 'x/8', '2/8', '254/8/1']) {
    assert.throws(() => parseDialect(bad), { code: 'TCPLENS_ERR_BAD_TOA' }, bad);
  }
  assert.throws(() => dialectTable([], false), { code: 'TCPLENS_ERR_BAD_TOA' });
  assert.throws(() => dialectTable(['200/8', '201/8', '202/8', '203/8', '204/8', '205/8']), { code: 'TCPLENS_ERR_BAD_TOA' });
});

test("toa.ko's by-value sk_user_data decodes; a kernel pointer does not", () => {
  // bytes fe 08 91 cd 0a 05 0c 46 as a little-endian u64
  const v = 0x460c050acd9108fen;
  const r = decodeToaKoValue(v)!;
  assert.equal(r.port, 37325);
  assert.equal(formatAddr(r.addr, 4), '10.5.12.70');
  assert.equal(decodeToaKoValue(0xffff888100996400n), null);
  assert.equal(decodeToaKoValue(0n), null);
  assert.equal(decodeToaKoValue(0xffff0c0acd9108fen), null, 'looks like a pointer: refused');
});

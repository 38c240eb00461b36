import test from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr } from '../../src/net/addr.js';
import { LINKTYPE_ETHERNET } from '../../src/net/link-type.js';
import { SegmentFilter } from '../../src/net/packet-filter.js';
import { httpFilterCases } from '../cases/http-filter-cases.js';

test('user-space filter gives every case-table verdict and reason', { timeout: 10_000 }, () => {
  for (const c of httpFilterCases) {
    const filter = new SegmentFilter({ ports: c.ports, hosts: (c.hosts ?? []).map(parseCidr) });
    const v = filter.judgeFrame(LINKTYPE_ETHERNET, c.frame);
    assert.equal(v.keep, c.keep, `${c.name}: keep`);
    assert.equal(v.reason, c.reason, `${c.name}: reason`);
  }
});

test('the case table covers every kind of frame the issue names', { timeout: 5_000 }, () => {
  const names = httpFilterCases.map((c) => c.name).join('\n');
  for (const kind of ['IPIP', 'QinQ', '802.1Q', 'IPv6 in IPv4', 'IPv6 hop-by-hop', 'fragment', 'host CIDR', 'data offset']) {
    assert.ok(names.includes(kind), kind);
  }
  assert.ok(httpFilterCases.some((c) => c.keep) && httpFilterCases.some((c) => !c.keep));
});

// The kernel socket filter (http.bpf.c) on every frame of the shared case table, through
// BPF_PROG_TEST_RUN: it must keep exactly what the user-space filter keeps.
import test from 'node:test';
import assert from 'node:assert/strict';
import { HttpKernelFilter } from '../../src/capabilities/http/filter.js';
import { parseCidr } from '../../src/net/addr.js';
import { SegmentFilter } from '../../src/net/packet-filter.js';
import { LINKTYPE_ETHERNET } from '../../src/net/link-type.js';
import { httpFilterCases } from '../cases/http-filter-cases.js';
import { buildFrame } from '../helpers/frames.js';

/** Under test_run a socket filter sees data from the IP header on (the kernel pulls an Ethernet
 * header off first): 14 dummy bytes in front put the case's own Ethernet header where an
 * AF_PACKET socket's filter sees it. */
function asAfPacket(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(14 + frame.length);
  // The dummy header's ethertype matters to the kernel, not to the filter: with 0x0800 test_run
  // refuses (EINVAL) a frame too short for an IPv4 header. 0x88b5 is IEEE's local experimental one.
  out[12] = 0x88;
  out[13] = 0xb5;
  out.set(frame, 14);
  return out;
}

test('the kernel filter keeps exactly what the case table keeps', { timeout: 60000 }, () => {
  const filters = new Map<string, HttpKernelFilter>();
  try {
    const failures: string[] = [];
    for (const tc of httpFilterCases) {
      const key = JSON.stringify([tc.ports, tc.hosts ?? []]);
      let f = filters.get(key);
      if (!f) {
        f = HttpKernelFilter.load({ ports: tc.ports, hosts: (tc.hosts ?? []).map(parseCidr) });
        filters.set(key, f);
      }
      const { retval } = f.obj.testRun('http_filter', asAfPacket(tc.frame));
      // Sanity: the user-space filter agrees with the table too (it is the reference).
      const user = new SegmentFilter({ ports: tc.ports, hosts: (tc.hosts ?? []).map(parseCidr) }).judgeFrame(LINKTYPE_ETHERNET, tc.frame);
      assert.equal(user.keep, tc.keep, `user space: ${tc.name}`);
      if ((retval !== 0) !== tc.keep) failures.push(`${tc.name}: kernel ${retval !== 0 ? 'kept' : 'dropped'}, table says ${tc.keep ? 'keep' : 'drop'}`);
      if (tc.keep) assert.equal(retval, tc.frame.length, `${tc.name}: a kept frame is kept whole`);
    }
    assert.deepEqual(failures, []);
    assert.ok(httpFilterCases.length >= 52);
  } finally {
    for (const f of filters.values()) f.close();
  }
});

test('the kernel filter counts each frame once, by verdict', { timeout: 30000 }, () => {
  const f = HttpKernelFilter.load({ ports: [80] });
  try {
    const base = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, payload: 'x' };
    f.obj.testRun('http_filter', asAfPacket(buildFrame(base)));
    f.obj.testRun('http_filter', asAfPacket(buildFrame({ ...base, dport: 22 })));
    f.obj.testRun('http_filter', asAfPacket(buildFrame({ ...base, protocol: 17 })));
    const c = f.counters();
    assert.equal(c.frames, 3);
    assert.equal(c.kept, 1);
    assert.equal(c.drop_port, 1);
    assert.equal(c.drop_not_tcp, 1);
  } finally {
    f.close();
  }
});

test('--snaplen truncates what the filter keeps', { timeout: 30000 }, () => {
  const f = HttpKernelFilter.load({ ports: [80], snaplen: 64 });
  try {
    const frame = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, payload: 'y'.repeat(500) });
    assert.equal(f.obj.testRun('http_filter', asAfPacket(frame)).retval, 64);
  } finally {
    f.close();
  }
});

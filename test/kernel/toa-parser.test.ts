// The kernel's TOA parser (bpf/include/toa-option.h), run through BPF_PROG_TEST_RUN on crafted frames:
// it must agree with the TS codec on every case, hostile ones included.
import test from 'node:test';
import assert from 'node:assert/strict';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { objectPath } from '../../src/kernel/paths.js';
import { formatAddr, type Family } from '../../src/net/addr.js';
import { dialectTable, MAX_DIALECTS, type ToaDialect } from '../../src/net/toa.js';
import { toaCases } from '../cases/toa-cases.js';
import { progInfo } from '../../src/kernel/pins.js';
import { acceptRodata, DEFAULT_MERGE_CAPACITY, type AcceptOptions } from '../../src/capabilities/accept/accept.js';
import { ACCEPTOR_PROGRAMS, acceptObject, fallbackPlan } from '../../src/capabilities/accept/attach-plan.js';
import { toaTablesRodata } from '../../src/capabilities/shared/toa-tables.js';
import { TOA_OBJECT } from '../../src/capabilities/toa/pinned.js';

/** Ethernet + IPv4 or IPv6 + TCP with these option bytes (padded with EOL to a multiple of 4). */
function frame(opts: number[], ipv6 = false, cutTo?: number): Uint8Array {
  const optLen = (opts.length + 3) & ~3;
  const tcp = new Uint8Array(20 + optLen);
  tcp.set([0x1f, 0x90, 0x00, 0x50], 0);
  tcp[12] = ((20 + optLen) / 4) << 4;
  tcp[13] = 0x10; // ACK
  tcp.set(opts, 20);
  const eth = new Uint8Array(14);
  eth[12] = ipv6 ? 0x86 : 0x08;
  eth[13] = ipv6 ? 0xdd : 0x00;
  let ip: Uint8Array;
  if (ipv6) {
    ip = new Uint8Array(40);
    ip[0] = 0x60;
    new DataView(ip.buffer).setUint16(4, tcp.length);
    ip[6] = 6;
    ip[7] = 64;
  } else {
    ip = new Uint8Array(20);
    ip[0] = 0x45;
    new DataView(ip.buffer).setUint16(2, 20 + tcp.length);
    ip[8] = 64;
    ip[9] = 6;
  }
  const all = new Uint8Array(eth.length + ip.length + tcp.length);
  all.set(eth);
  all.set(ip, 14);
  all.set(tcp, 14 + ip.length);
  return cutTo === undefined ? all : all.subarray(0, cutTo);
}

function withParser(dialects: ToaDialect[], fn: (run: (bytes: Uint8Array) => Record<string, unknown>) => void): void {
  const obj = BpfObject.open(objectPath('test/kernel/fixtures/toa-parse'));
  try {
    const d = obj.struct('toa_dialect');
    obj.setRodata({
      toa_dialects: d.encodeArray(dialects.map((x) => ({ kind: x.kind, len: x.len, family: x.family })), MAX_DIALECTS),
      toa_dialect_count: dialects.length,
    });
    obj.load();
    const found = obj.struct('toa_found');
    const result = obj.map('result');
    const zero = Buffer.alloc(4);
    fn((bytes) => {
      result.update(zero, Buffer.alloc(result.valueSize));
      const { retval } = obj.testRun('toa_parse_test', bytes);
      assert.equal(retval, 0, 'the program parsed the frame');
      const v = result.lookup(zero)!;
      const status = ['none', 'found', 'malformed', 'conflict'][v[found.offset('status', 1)]];
      const family = v[found.offset('family', 1)] as Family;
      const at = found.offset('addr', 16);
      return {
        status,
        kind: v[found.offset('kind', 1)],
        len: v[found.offset('len', 1)],
        family,
        port: v.readUInt16LE(found.offset('port', 2)),
        addr: status === 'found' || status === 'conflict' ? formatAddr(v.subarray(at, at + 16), family) : undefined,
      };
    });
  } finally {
    obj.close();
  }
}

test('kernel parser agrees with the TOA case table (IPv4 and IPv6 frames)', () => {
  withParser(dialectTable([]), (run) => {
    for (const c of toaCases) {
      for (const ipv6 of [false, true]) {
        const r = run(frame(c.opts, ipv6));
        const why = `${c.name} (${ipv6 ? 'IPv6' : 'IPv4'} frame)`;
        assert.equal(r.status, c.status, why);
        if (c.status === 'found' || c.status === 'conflict') {
          assert.deepEqual([r.kind, r.len, r.family, r.port, r.addr], [c.kind, c.len, c.family, c.port, c.addr], why);
        }
      }
    }
  });
});

test('kernel parser: a frame cut off inside the options is malformed, not read past its end', () => {
  withParser(dialectTable([]), (run) => {
    const full = frame([1, 1, 254, 8, 0, 80, 10, 0, 0, 1]);
    assert.equal(run(full).status, 'found');
    // doff promises 12 option bytes; the frame ends 3 bytes into the TOA's address
    assert.equal(run(full.subarray(0, 14 + 20 + 20 + 7)).status, 'malformed');
    // cut before the options begin: nothing to see
    assert.equal(run(full.subarray(0, 14 + 20 + 18)).status, 'none');
  });
});

test('kernel parser: the dialect table comes from rodata (200/8 only)', () => {
  withParser(dialectTable(['200/8'], false), (run) => {
    const r = run(frame([200, 8, 0x01, 0xbb, 10, 1, 2, 3]));
    assert.deepEqual([r.status, r.kind, r.port, r.addr], ['found', 200, 443, '10.1.2.3']);
    assert.equal(run(frame([254, 8, 0, 80, 10, 0, 0, 1])).status, 'none', '254/8 is not configured');
  });
});

test("kernel decodes toa.ko's by-value sk_user_data and refuses kernel pointers", () => {
  const obj = BpfObject.open(objectPath('test/kernel/fixtures/toa-parse'));
  try {
    obj.load();
    const found = obj.struct('toa_found');
    const result = obj.map('result');
    const zero = Buffer.alloc(4);
    const decode = (value: bigint) => {
      const pkt = Buffer.alloc(64);
      pkt.writeBigUInt64LE(value, 0);
      result.update(zero, Buffer.alloc(result.valueSize));
      assert.equal(obj.testRun('toako_decode_test', pkt).retval, 0);
      const v = result.lookup(zero)!;
      const at = found.offset('addr', 16);
      return { status: v[found.offset('status', 1)], port: v.readUInt16LE(found.offset('port', 2)), addr: formatAddr(v.subarray(at, at + 16), 4) };
    };
    // the example bytes fe 08 91 cd 0a 05 0c 46, as toa.ko leaves them in sk_user_data
    assert.deepEqual(decode(0x460c050acd9108fen), { status: 1, port: 37325, addr: '10.5.12.70' });
    assert.equal(decode(0xffff888100996400n).status, 0, 'a kernel pointer is not a TOA');
    assert.equal(decode(0xffff0c0acd9108fen).status, 0, 'TOA-looking bytes in a pointer-shaped value are refused');
    assert.equal(decode(0n).status, 0);
    assert.equal(decode(0x460c050acd9107fen).status, 0, 'opsize 7 is not toa.ko');
  } finally {
    obj.close();
  }
});

// The real programs that carry the parser, loaded the way `tcplens accept` / `tcplens toa enable`
// load them, with tables the verifier once gave up on (1M insns on 6.12 for 200/8 only; every
// slot used was near it on 6.18). Its work is bounded whatever the table: checked where the kernel
// reports it (verified_insns, Linux >= 5.16), with room for kernels that count differently.
const VERIFIER_BUDGET = 250_000;
const LOAD_TABLES: Record<string, ToaDialect[]> = {
  '200/8 only': dialectTable(['200/8'], false),
  'defaults + 200/8': dialectTable(['200/8']),
  'all 8 slots': dialectTable(['200/8', '201/20', '202/8', '203/20', '204/8']),
};

function loadReal(path: string, rodata: (obj: BpfObject) => Record<string, number | bigint | Uint8Array>, programs: string[], off: string[] = []): Record<string, number | null> {
  const obj = BpfObject.open(objectPath(path));
  try {
    for (const p of off) obj.setAutoload(p, false);
    obj.setRodata(rodata(obj));
    obj.load();
    return Object.fromEntries(programs.map((p) => [p, progInfo(obj.program(p).fd).verifiedInsns]));
  } finally {
    obj.close();
  }
}

test('the accept and toa programs load with any dialect table, the verifier\'s work bounded', (t) => {
  const acceptOpts = (dialects: ToaDialect[]): AcceptOptions => ({ cgroup: '', ports: [], family: 0, mergeWindowNs: 0n,
    mergeCapacity: DEFAULT_MERGE_CAPACITY, trusted: [], dialects, toaConflict: 'reject', saveSyn: true, readToaKo: true });
  const object = acceptObject();
  for (const [name, dialects] of Object.entries(LOAD_TABLES)) {
    const counts = {
      ...loadReal(`src/capabilities/accept/${object}`, (obj) => acceptRodata(obj, acceptOpts(dialects), fallbackPlan(object, [])), ['accept_sockops'], ACCEPTOR_PROGRAMS),
      ...loadReal(TOA_OBJECT, (obj) => ({ ...toaTablesRodata(obj, { dialects, trusted: [] }), save_syn: 1, conflict_take_first: 0 }), ['toa_sockops']),
    };
    t.diagnostic(`${name}: verified insns ${JSON.stringify(counts)} (${object})`);
    for (const [prog, n] of Object.entries(counts)) {
      if (n !== null) assert.ok(n < VERIFIER_BUDGET, `${prog} with ${name}: the verifier processed ${n} insns`);
    }
  }
});

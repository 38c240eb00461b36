// Reading the lab's captures: frames taken from a real lab capture (balancer -> server SYNs).
import test from 'node:test';
import assert from 'node:assert/strict';
import { parsePcap, findToa } from '../../src/lab/capture.js';

const SYN4 = '9ea6155e25dcca7ff6b0c087080045000044eceb40003e063bbb0a0100010a01000bd6c00050b0d8945c00000000c002faf0a3010000020405b40402080a50ab2833000000000103030afe08d6c00a010206';
const SYN6 = '9ea6155e25dcca7ff6b0c08786dd60015647003c063dfd000001000000000000000000000001fd0000010000000000000000000000119ec80050e81e5b1400000000f002fd209f460000020405a00402080a1e09c844000000000103030afd149ec8fd000001000300020000000000000002';

function pcap(...frames: string[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(1, 20);
  const recs = frames.map((hex) => {
    const f = Buffer.from(hex, 'hex');
    const h = Buffer.alloc(16);
    h.writeUInt32LE(f.length, 8);
    h.writeUInt32LE(f.length, 12);
    return Buffer.concat([h, f]);
  });
  return Buffer.concat([head, ...recs]);
}

test('a SYN with an IPv4 TOA: addresses, checksums and the option', () => {
  const [s] = parsePcap(pcap(SYN4));
  assert.equal(s.family, 4);
  assert.equal(`${s.src}:${s.sport} > ${s.dst}:${s.dport}`, '10.1.0.1:54976 > 10.1.0.11:80');
  assert.equal(s.flags, 0x02);
  assert.equal(s.ttl, 62);
  assert.equal(s.payloadLen, 0);
  assert.ok(s.ipChecksumOk && s.tcpChecksumOk);
  assert.deepEqual(findToa(s.options), { kind: 254, len: 8, port: 54976, addr: '10.1.2.6' });
});

test('a SYN with an IPv6 TOA fills the option space exactly', () => {
  const [s] = parsePcap(pcap(SYN6));
  assert.equal(s.family, 6);
  assert.equal(s.options.length, 40);
  assert.ok(s.tcpChecksumOk);
  assert.deepEqual(findToa(s.options), { kind: 253, len: 20, port: 40648, addr: 'fd00:1:3:2::2' });
});

test('one flipped bit is a bad checksum', () => {
  const bad4 = SYN4.slice(0, -2) + '07'; // last address byte of the TOA
  const [s] = parsePcap(pcap(bad4));
  assert.equal(s.tcpChecksumOk, false);
  assert.equal(s.ipChecksumOk, true);
  const badIp = SYN4.slice(0, 44) + 'ff' + SYN4.slice(46); // the TTL
  assert.equal(parsePcap(pcap(badIp))[0].ipChecksumOk, false);
  assert.equal(findToa(new Uint8Array([1, 1, 8, 10, 0, 0, 0, 0, 0, 0])), null);
});

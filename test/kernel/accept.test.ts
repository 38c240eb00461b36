// tcplens accept against the real kernel: two namespaces, a client whose cgroup writes TOA options
// (as a FULLNAT balancer does), a server in its own cgroup, and the real CLI watching that cgroup.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readlinkSync } from 'node:fs';
import { Lines, NetPair } from './helpers/netns.js';
import { ToaWriter, WRITE_ACK, WRITE_SYN } from './helpers/toa-writer.js';
import { SERVERS } from './helpers/toa-harness.js';
import { cliPath, startTcplens } from './helpers/tcplens-cli.js';
import { encodeToa } from '../../src/net/toa.js';
import { parseAddr } from '../../src/net/addr.js';
import { repoRoot } from '../../src/kernel/paths.js';
import type { AcceptRecord } from '../../src/capabilities/accept/accept.js';
import { TIME_SCALE } from '../matrix/time-scale.js';

const helper = (name: string) => `${repoRoot}/dist/test/kernel/helpers/${name}.js`;
const PORT = 8080;
let pair: NetPair;

before(async () => {
  pair = new NetPair('acc');
});
after(() => pair?.dispose());

/** Run `tcplens accept` on the server cgroup while `traffic` runs; the JSON records and stderr. */
async function watch(args: string[], traffic: () => Promise<void>, serverHost = '::'):
  Promise<{ records: AcceptRecord[]; stderr: string[] }> {
  const t = await startTcplens(['accept', '--json', '--cgroup', pair.server.cgroup, ...args]);
  // The listener opens after tcplens attached, so its SYNs are saved too.
  const server = pair.spawnIn(pair.server, [process.execPath, helper('tcp-server'), serverHost, String(PORT)]);
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    await traffic();
  } finally {
    server.kill('SIGKILL');
  }
  const r = await t.stop();
  assert.equal(r.code, 0, r.stderr.join('\n'));
  return { records: r.stdout.map((l) => JSON.parse(l) as AcceptRecord), stderr: r.stderr };
}

function connect(host: string, extra: string[]): Promise<string> {
  return pair.run(pair.client, [process.execPath, helper('tcp-client'), '--host', host, '--port', String(PORT), ...extra]);
}

/** Wait until a tcplens run has attached, make `count` connections, and wait (15 s at most) for
 * the run to end by itself. */
async function endsAfterTraffic(proc: ChildProcess, count: number): Promise<{ code: number | null; out: Lines; err: Lines }> {
  const exited = once(proc, 'exit');
  const out = new Lines(proc, 'stdout');
  const err = new Lines(proc, 'stderr');
  await err.wait(/tcplens: attached/, 20000);
  await connect(pair.server.ip4, ['--count', String(count)]);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
  const [code] = await exited;
  clearTimeout(timer);
  return { code, out, err };
}

const toa4 = (addr: string, port: number, kind = 254) => encodeToa(kind, 4, parseAddr(addr)!.bytes, port);
const toa6 = (addr: string, port: number, kind: number) => encodeToa(kind, 6, parseAddr(addr)!.bytes, port);

test('each connection reports exactly the client its TOA (254/8 on SYN and ACK) names', async () => {
  const writer = new ToaWriter(pair.client.cgroup);
  try {
    const ports = [41001, 41002, 41003, 41004, 41005];
    ports.forEach((p, i) => writer.forPort(p, toa4(`198.51.100.${i + 10}`, 5000 + i)));
    const { records, stderr } = await watch(['--merge-window', '0'], async () => {
      await connect(pair.server.ip4, ['--ports', ports.join(',')]);
    });
    assert.equal(records.length, ports.length, JSON.stringify(records));
    for (const [i, p] of ports.entries()) {
      const r = records.find((x) => x.peer === `${pair.client.ip4}:${p}`);
      assert.ok(r, `an event for client port ${p}`);
      assert.equal(r.client, `198.51.100.${i + 10}:${5000 + i}`);
      assert.equal(r.local, `${pair.server.ip4}:${PORT}`, 'IPv4 on the dual-stack listener is reported as IPv4');
      assert.deepEqual(r.toa, { kind: 254, len: 8, source: 'ack', claimed: r.client });
      assert.equal(r.trusted, true);
      assert.equal(r.count, 1);
      assert.ok(r.kernel_ns > 0 && r.kernel_ns < 1_000_000 * TIME_SCALE, `kernel_ns ${r.kernel_ns}`);
      assert.equal(r.comm, 'node', 'the listening process');
      assert.deepEqual([r.ttl, r.hops], [64, 0], 'the client is on the same link: nothing took a hop off its TTL');
      assert.ok(r.pid && r.pid > 1);
      assert.ok(!Number.isNaN(Date.parse(r.time)));
    }
    assert.ok(stderr.some((l) => /no --trusted-lb given/.test(l)), 'warns once that every TOA is believed');
    assert.ok(stderr.some((l) => /5 connections in 5 events .* TOA seen 5, untrusted 0/.test(l)), stderr.join('\n'));
  } finally {
    writer.close();
  }
});

test('a TOA only on the SYN is read from the saved SYN', async () => {
  const writer = new ToaWriter(pair.client.cgroup, WRITE_SYN);
  try {
    writer.forAll(toa4('203.0.113.9', 777));
    const { records } = await watch(['--merge-window', '0', '--save-syn'], () => connect(pair.server.ip4, ['--count', '2']).then(() => undefined));
    assert.equal(records.length, 2);
    for (const r of records) {
      assert.equal(r.client, '203.0.113.9:777');
      assert.equal(r.toa?.source, 'syn');
      assert.deepEqual([r.ttl, r.hops], [64, 0], 'the saved SYN\'s own TTL');
    }
    const plain = await watch(['--merge-window', '0'], () => connect(pair.server.ip4, ['--count', '1']).then(() => undefined));
    assert.equal(plain.records[0].client, null, 'without --save-syn only the handshake ACK is read');
  } finally {
    writer.close();
  }
});

test('a TOA only on the ACK is read from the ACK', async () => {
  const writer = new ToaWriter(pair.client.cgroup, WRITE_ACK);
  try {
    writer.forAll(toa4('203.0.113.10', 778));
    const { records } = await watch(['--merge-window', '0'], () => connect(pair.server.ip4, []).then(() => undefined));
    assert.equal(records.length, 1);
    assert.equal(records[0].client, '203.0.113.10:778');
    assert.equal(records[0].toa?.source, 'ack');
  } finally {
    writer.close();
  }
});

test('IPv6: 253/20 and 254/20 carry IPv6 clients over IPv6 connections', async () => {
  const writer = new ToaWriter(pair.client.cgroup);
  try {
    writer.forPort(42001, toa6('2001:db8::a', 6001, 253));
    writer.forPort(42002, toa6('2001:db8::b', 6002, 254));
    const { records } = await watch(['--merge-window', '0', '-6'], async () => {
      await connect(pair.server.ip6, ['--ports', '42001,42002']);
      await connect(pair.server.ip4, ['--count', '1']); // IPv4: left out by -6
    });
    assert.equal(records.length, 2, JSON.stringify(records));
    const a = records.find((r) => r.peer === `[${pair.client.ip6}]:42001`)!;
    const b = records.find((r) => r.peer === `[${pair.client.ip6}]:42002`)!;
    assert.equal(a.client, '[2001:db8::a]:6001');
    assert.deepEqual([a.toa?.kind, a.toa?.len], [253, 20]);
    assert.equal(b.client, '[2001:db8::b]:6002');
    assert.deepEqual([b.toa?.kind, b.toa?.len], [254, 20]);
    assert.equal(a.local, `[${pair.server.ip6}]:${PORT}`);
  } finally {
    writer.close();
  }
});

test('no TOA: client is null and the peer is what the server sees (also with toa.ko reading on)', async () => {
  const { records, stderr } = await watch(['--merge-window', '0', '--toa-ko', 'yes'], () => connect(pair.server.ip4, ['--count', '2']).then(() => undefined));
  assert.equal(records.length, 2);
  for (const r of records) {
    assert.equal(r.client, null);
    assert.equal(r.toa, null);
    assert.equal(r.trusted, null);
    assert.ok(r.peer.startsWith(`${pair.client.ip4}:`));
  }
  assert.ok(stderr.some((l) => /none 2/.test(l)));
});

test('--trusted-lb: a TOA from outside the list is not used, and is counted; from inside it is', async () => {
  const writer = new ToaWriter(pair.client.cgroup);
  try {
    writer.forAll(toa4('192.0.2.66', 1234));
    const untrusted = await watch(['--merge-window', '0', '--trusted-lb', '10.99.0.0/16', '--trusted-lb', 'fd00:99::/64'],
      () => connect(pair.server.ip4, []).then(() => undefined));
    assert.equal(untrusted.records.length, 1);
    const u = untrusted.records[0];
    assert.equal(u.client, null, 'an untrusted TOA is never the client');
    assert.equal(u.trusted, false);
    assert.equal(u.toa?.claimed, '192.0.2.66:1234', 'but what it claimed is shown');
    assert.ok(untrusted.stderr.some((l) => /untrusted 1/.test(l)), untrusted.stderr.join('\n'));
    assert.ok(!untrusted.stderr.some((l) => /no --trusted-lb given/.test(l)));

    const trusted = await watch(['--merge-window', '0', '--trusted-lb', `${pair.client.ip4}/32`],
      () => connect(pair.server.ip4, []).then(() => undefined));
    assert.equal(trusted.records[0].client, '192.0.2.66:1234');
    assert.equal(trusted.records[0].trusted, true);
  } finally {
    writer.close();
  }
});

test('merging: the first connection is reported at once; its N-1 repeats come as one summary of N at the window\'s end', async () => {
  const writer = new ToaWriter(pair.client.cgroup);
  try {
    writer.forAll(toa4('198.51.100.77', 9999));
    const N = 7;
    const { records, stderr } = await watch(['--merge-window', '30s'], () => connect(pair.server.ip4, ['--count', String(N)]).then(() => undefined));
    assert.equal(records.length, 2, JSON.stringify(records));
    const [first, summary] = records;
    assert.deepEqual([first.count, first.summary, first.client], [1, false, '198.51.100.77:9999']);
    assert.deepEqual([summary.count, summary.summary, summary.client], [N, true, '198.51.100.77:9999'], 'flushed at exit');
    assert.equal(summary.time, first.time, 'the same window');
    assert.ok(summary.last && summary.last >= summary.time);
    assert.ok(stderr.some((l) => new RegExp(`${N} connections in 2 events \\(${N - 1} merged, 0 unmerged`).test(l)), stderr.join('\n'));
  } finally {
    writer.close();
  }
});

test('with the default 10 s window, the first connection is on screen within a second', async () => {
  const t = await startTcplens(['accept', '--json', '--cgroup', pair.server.cgroup]);
  const server = pair.spawnIn(pair.server, [process.execPath, helper('tcp-server'), '::', String(PORT)]);
  try {
    await new Promise((r) => server.stdout!.once('data', r));
    const t0 = Date.now();
    await connect(pair.server.ip4, ['--count', '3']);
    const line = await t.stdout.wait(/"local"/, 1000 * TIME_SCALE);
    assert.ok(Date.now() - t0 < 1000 * TIME_SCALE);
    assert.equal(JSON.parse(line).count, 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(t.stdout.all.length, 1, 'repeats wait for the window');
  } finally {
    server.kill('SIGKILL');
    await t.stop();
  }
});

test('a full merge map is visible: events go out unmerged, counted, and every connection is in some count', async () => {
  const writer = new ToaWriter(pair.client.cgroup);
  try {
    // 12 clients (distinct TOAs, so distinct keys), 3 connections each, into a map of 4 windows.
    const ports = Array.from({ length: 36 }, (_, i) => 43000 + i);
    ports.forEach((p, i) => writer.forPort(p, toa4(`198.51.100.${100 + (i % 12)}`, 7000)));
    const { records, stderr } = await watch(['--merge-window', '30s', '--merge-capacity', '4'],
      () => connect(pair.server.ip4, ['--ports', ports.join(',')]).then(() => undefined));
    const accounted = records.reduce((n, r) => n + (r.summary ? r.count - 1 : r.count), 0);
    assert.equal(accounted, ports.length, JSON.stringify(records));
    const line = stderr.find((l) => l.startsWith('tcplens accept:'))!;
    const full = Number(/(\d+) unmerged: merge map full/.exec(line)?.[1]);
    assert.ok(full > 0, line);
    assert.equal(records.filter((r) => !r.summary).length, 4 + full, 'first sightings: one per window opened, plus every unmerged one');
  } finally {
    writer.close();
  }
});

test('two TOAs in one header are a conflict: no client by default, the first with --toa-conflict first', async () => {
  const writer = new ToaWriter(pair.client.cgroup);
  try {
    // A client's own TOA and a balancer's on SYN and ACK (different kinds of the default dialects:
    // the kernel stores no kind twice from BPF).
    writer.forAll(Uint8Array.from([...toa4('198.51.100.1', 1111), ...toa6('2001:db8::2', 2222, 253)]));
    const rejected = await watch(['--merge-window', '0'], () => connect(pair.server.ip4, []).then(() => undefined));
    assert.equal(rejected.records.length, 1);
    const r = rejected.records[0];
    assert.deepEqual([r.client, r.malformed, r.toa?.claimed], [null, 'conflict', '198.51.100.1:1111']);
    assert.ok(rejected.stderr.some((l) => /conflict 1,/.test(l)), rejected.stderr.join('\n'));
    const first = await watch(['--merge-window', '0', '--toa-conflict', 'first'], () => connect(pair.server.ip4, []).then(() => undefined));
    assert.deepEqual([first.records[0].client, first.records[0].malformed], ['198.51.100.1:1111', 'conflict']);
  } finally {
    writer.close();
  }
});

test('a listener opened before tcplens, in another namespace, gets its pid, comm and cgroup', async () => {
  const server = pair.spawnIn(pair.server, [process.execPath, helper('tcp-server'), '::', String(PORT)]);
  try {
    await new Promise((r) => server.stdout!.once('data', r));
    const t = await startTcplens(['accept', '--json', '--merge-window', '0', '--cgroup', pair.server.cgroup]);
    await connect(pair.server.ip4, ['--count', '1']);
    const line = await t.stdout.wait(/"local"/, 5000);
    await t.stop();
    const r = JSON.parse(line) as AcceptRecord;
    assert.equal(r.comm, 'node');
    assert.equal(r.pid, server.pid, 'sh, ip netns exec and node are one process (each execs the next)');
    assert.equal(r.cgroup, pair.server.cgroup.replace(/^\/sys\/fs\/cgroup\/unified\//, ''));
    assert.equal(r.netns, Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${r.pid}/ns/net`))![1]));
  } finally {
    server.kill('SIGKILL');
  }
});

test('--save-syn: TCP_SAVE_SYN is on only while tcplens runs, and listeners opened before are named', async () => {
  const flagServer = SERVERS.saveSynFlag;
  const old = pair.spawnIn(pair.server, flagServer(PORT + 1));
  await new Promise((r) => old.stdout!.once('data', r));
  const t = await startTcplens(['accept', '--json', '--merge-window', '0', '--save-syn', '--cgroup', pair.server.cgroup]);
  const fresh = pair.spawnIn(pair.server, flagServer(PORT + 2));
  try {
    await new Promise((r) => fresh.stdout!.once('data', r));
    const ask = async (port: number) => (await pair.run(pair.client, [process.execPath, helper('tcp-client'), '--host', pair.server.ip4, '--port', String(port)]))
      .trim().split('\n').map((l) => (JSON.parse(l) as { seen: string }).seen)[0];
    assert.equal(await ask(PORT + 2), '1', 'on for a listener opened while tcplens runs');
    assert.equal(await ask(PORT + 1), '0', 'a listener from before is left alone');
    await t.stderr.wait(/--save-syn: 1 listener opened before tcplens keep no SYN .*python3 :8081/, 5000);
    const r = await t.stop();
    assert.ok(r.stderr.some((l) => /TCP_SAVE_SYN turned off again on 1 listener/.test(l)), r.stderr.join('\n'));
    assert.equal(await ask(PORT + 2), '0', 'off again once tcplens is gone');
  } finally {
    old.kill('SIGKILL');
    fresh.kill('SIGKILL');
    await t.stop();
  }
});

test('`accept --json | head -1` ends cleanly: one line, exit 0, summary on stderr, nothing attached, no stack trace', async () => {
  const server = pair.spawnIn(pair.server, [process.execPath, helper('tcp-server'), '::', String(PORT)]);
  try {
    await new Promise((r) => server.stdout!.once('data', r));
    // pipefail: the exit status is tcplens's (head's is 0 anyway).
    const sh = spawn('bash', ['-o', 'pipefail', '-c', `${process.execPath} ${cliPath} accept --json --merge-window 0 --cgroup ${pair.server.cgroup} | head -1`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    // head exits after the first line; tcplens must notice and end by itself.
    const { code, out, err } = await endsAfterTraffic(sh, 3);
    assert.equal(code, 0);
    assert.equal(out.all.length, 1);
    assert.ok(err.all.some((l) => /^tcplens accept: \d+ connections/.test(l)), err.all.join('\n'));
    assert.ok(!err.all.some((l) => /EPIPE|^\s+at /.test(l)), err.all.join('\n'));
    assert.doesNotMatch(execFileSync('bpftool', ['cgroup', 'show', pair.server.cgroup], { encoding: 'utf8' }), /sock_ops/);
  } finally {
    server.kill('SIGKILL');
  }
});

test('merging: a closed window is handed on while tcplens keeps running', async () => {
  const t = await startTcplens(['accept', '--json', '--cgroup', pair.server.cgroup, '--merge-window', `${300 * TIME_SCALE}ms`]);
  const server = pair.spawnIn(pair.server, [process.execPath, helper('tcp-server'), '::', String(PORT)]);
  try {
    await new Promise((r) => server.stdout!.once('data', r));
    await connect(pair.server.ip4, ['--count', '3']);
    const line = await t.stdout.wait(/"count":3/, 5000 * TIME_SCALE);
    assert.equal(JSON.parse(line).summary, true, 'swept after the window closed, before exit');
  } finally {
    server.kill('SIGKILL');
    await t.stop();
  }
});

test('without --json: a live table for people, and the summary on SIGTERM', async () => {
  const t = await startTcplens(['accept', '--cgroup', pair.server.cgroup, '--merge-window', '0']);
  const server = pair.spawnIn(pair.server, [process.execPath, helper('tcp-server'), '::', String(PORT)]);
  try {
    await new Promise((r) => server.stdout!.once('data', r));
    await connect(pair.server.ip4, ['--count', '2']);
    await t.stdout.wait(new RegExp(`${pair.client.ip4.replace(/\./g, '\\.')}:\\d+`), 5000);
  } finally {
    server.kill('SIGKILL');
  }
  const r = await t.stop('SIGTERM');
  assert.equal(r.code, 0);
  assert.match(r.stdout[0], /^TIME\s+LOCAL\s+PEER\s+CLIENT\s+TOA\s+COUNT\s+HOPS\s+KNS\s+PROCESS\s+CGROUP$/);
  assert.equal(r.stdout.length, 3, r.stdout.join('\n'));
  assert.match(r.stdout[1], new RegExp(`${pair.server.ip4}:${PORT}\\s+${pair.client.ip4}:\\d+\\s+-\\s+-\\s+1\\s+0\\s+\\d+\\s+\\d+/node\\s+tcplens-test-\\S+/s$`));
  assert.ok(r.stderr.some((l) => /2 connections in 2 events/.test(l)), r.stderr.join('\n'));
});

test('--port filters in the kernel: other ports are counted as filtered, not reported', async () => {
  const { records, stderr } = await watch(['--merge-window', '0', '--port', '9'], () => connect(pair.server.ip4, ['--count', '2']).then(() => undefined));
  assert.equal(records.length, 0);
  assert.ok(stderr.some((l) => /filtered 2/.test(l)), stderr.join('\n'));
});

test('nothing stays attached after exit, also after SIGKILL', async () => {
  const attached = () => execFileSync('bpftool', ['cgroup', 'show', pair.server.cgroup], { encoding: 'utf8' });
  const progs = () => execFileSync('bpftool', ['prog', 'show'], { encoding: 'utf8' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    const t = await startTcplens(['accept', '--cgroup', pair.server.cgroup]);
    assert.match(attached(), /sock_ops/);
    await t.stop(signal);
    // BPF links die with their process; give the kernel a moment to release them.
    for (let i = 0; i < 50 && /accept_sockops/.test(progs()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.doesNotMatch(attached(), /sock_ops/, `after ${signal}`);
    assert.doesNotMatch(progs(), /accept_sockops/, `after ${signal}`);
  }
});

test('an error nobody caught (here: in the ring\'s record handler) is a coded error, detaches, and ends the process', async () => {
  const server = pair.spawnIn(pair.server, [process.execPath, helper('tcp-server'), '::', String(PORT)]);
  try {
    await new Promise((r) => server.stdout!.once('data', r));
    const proc = spawn(process.execPath, [cliPath, 'accept', '--json', '--merge-window', '0', '--cgroup', pair.server.cgroup],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TCPLENS_ACCEPT_FAILPOINT: 'record' } });
    const { code, err } = await endsAfterTraffic(proc, 1);
    assert.equal(code, 70);
    await new Promise((r) => setImmediate(r));
    assert.ok(err.all.some((l) => /^tcplens: TCPLENS_ERR_INTERNAL: failing on purpose/.test(l)), err.all.join('\n'));
    assert.ok(err.all.some((l) => /hint: /.test(l)));
    assert.ok(!err.all.some((l) => /^\s+at /.test(l)), 'no stack trace');
    assert.doesNotMatch(execFileSync('bpftool', ['cgroup', 'show', pair.server.cgroup], { encoding: 'utf8' }), /sock_ops/);
  } finally {
    server.kill('SIGKILL');
  }
});

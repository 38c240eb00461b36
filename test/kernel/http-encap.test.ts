// `tcplens http` live on a veth, through the real CLI: VLAN-tagged frames (sent in-band from a raw
// AF_PACKET socket, as this kernel has no vlan devices; the receiving veth moves the outer tag
// into skb metadata, so the kernel filter's vlan_present path and the ring's TP_STATUS_VLAN_VALID
// are what is tested) and IPIP produced with raw IPPROTO_IPIP sockets are decoded with their tag
// and tunnel. Without --iface every interface is captured, loopback once per packet.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { SERVER_SCRIPT } from '../../src/lab/servers.js';
import { Lines, NetPair, sh } from './helpers/netns.js';
import { cliPath, runTcplens, startTcplens } from './helpers/tcplens-cli.js';
import { IpipSender } from './helpers/ipip-sender.js';
import { FrameSender } from './helpers/frame-sender.js';
import { TcpConversation } from '../helpers/tcp-conversation.js';

const LOAD = join(repoRoot, 'dist', 'test', 'kernel', 'helpers', 'http-load.js');
let pair: NetPair;
const dev = (side: 'c' | 's') => sh('ip', ['-n', side === 'c' ? pair.client.ns : pair.server.ns, '-o', 'link', 'show', 'type', 'veth']).split(':')[1].trim().split('@')[0];

const startIn = (netns: string, args: string[]) => startTcplens(['http', ...args], /tcplens: attached/, false, netns);

before(() => {
  pair = new NetPair('h');
});

after(() => pair?.dispose());

test('VLAN-tagged frames on a veth (the tag in skb metadata on receive): 802.1Q and QinQ decoded, three tags dropped', { timeout: 120000 }, async () => {
  const cap = await startIn(pair.server.ns, ['--iface', dev('s'), '--port', '80', '--json', '--block-timeout', '5ms']);
  const wire = new FrameSender(pair.client.ns, dev('c'));
  let code: number | null;
  let keptCount = 0;
  try {
    const conv = (port: number, vlans: number[], path: string) => TcpConversation.simple(
      { client: '10.98.0.1', server: '10.98.0.2', clientPort: port, serverPort: 80, vlans },
      [[`GET ${path} HTTP/1.1\r\nHost: tagged\r\n\r\n`, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']]);
    const kept = [...conv(42000, [100], '/dot1q').frames, ...conv(42001, [200, 100], '/qinq').frames];
    keptCount = kept.length;
    const frames = [...kept, ...conv(42002, [300, 200, 100], '/three-tags').frames];
    for (const f of frames) {
      wire.send(f.frame);
      await new Promise((r) => setTimeout(r, 2));
    }
    await cap.stdout.wait(/"path":"\/qinq"/, 10000);
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    wire.close();
    code = (await cap.stop()).code;
  }
  assert.equal(code, 0, cap.stderr.all.join('\n'));
  const got = cap.stdout.all.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(got.map((e) => [e.path, e.vlan, e.status, e.error]), [['/dot1q', 100, 200, null], ['/qinq', 200, 200, null]]);
  // The three-tag frames never reached user space: the kernel filter counted the tag in metadata
  // (skb->vlan_present) and dropped them, so nothing was skipped and only the kept frames arrived.
  const summary = cap.stderr.all.find((l) => l.startsWith('tcplens http: summary'))!;
  assert.match(summary, new RegExp(` packets=${keptCount} `));
  assert.match(summary, / kernel_drops=0 .* skipped=0 /);
  assert.match(summary, new RegExp(` vlan_in_metadata=${keptCount} `), 'every kept frame\'s outer tag arrived in metadata');
});

test('IPIP made with raw IPPROTO_IPIP sockets: the exchange inside, with the outer addresses', { timeout: 120000 }, async () => {
  const cap = await startIn(pair.server.ns, ['--iface', dev('s'), '--port', '80', '--json', '--block-timeout', '5ms']);
  const up = new IpipSender(pair.client.ns, pair.server.ip4);
  const down = new IpipSender(pair.server.ns, pair.client.ip4);
  let code: number | null;
  try {
    const conv = TcpConversation.simple({ client: '10.99.0.1', server: '10.99.0.2', clientPort: 41000, serverPort: 80 },
      [['GET /inside-ipip HTTP/1.1\r\nHost: pod\r\n\r\n', 'HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc']]);
    // Ports other than --port inside the tunnel must be dropped by the kernel filter.
    const other = TcpConversation.simple({ client: '10.99.0.1', server: '10.99.0.2', clientPort: 41001, serverPort: 8080 },
      [['GET /other-port HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']]);
    for (const f of [...conv.frames, ...other.frames]) {
      (f.fromClient ? up : down).send(f.frame.subarray(14)); // the inner IPv4 packet, without Ethernet
      await new Promise((r) => setTimeout(r, 2));
    }
    await cap.stdout.wait(/inside-ipip/, 10000);
  } finally {
    up.close();
    down.close();
    code = (await cap.stop()).code;
  }
  assert.equal(code, 0, cap.stderr.all.join('\n'));
  const got = cap.stdout.all.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(got.length, 1, cap.stdout.all.join('\n'));
  const e = got[0];
  assert.equal(e.path, '/inside-ipip');
  assert.equal(e.status, 201);
  assert.equal(e.resp_bytes, 3);
  assert.equal(e.client, '10.99.0.1:41000');
  assert.equal(e.server, '10.99.0.2:80');
  const t = e.tunnel as { type: string; src: string; dst: string };
  assert.equal(t.type, 'ipip');
  assert.deepEqual([t.src, t.dst].sort(), [pair.client.ip4, pair.server.ip4].sort());
});

test('every interface at once, loopback included: each exchange once (loopback\'s outgoing copy is skipped)', { timeout: 120000 }, async () => {
  const server = pair.spawnIn(pair.server, [process.execPath, SERVER_SCRIPT, 'lo-server', '80']);
  await new Lines(server, 'stdout').wait(/listening/, 15000);
  const cap = await startIn(pair.server.ns, ['--port', '80', '--json', '--block-timeout', '5ms']);
  let code: number | null;
  try {
    const out = await pair.run(pair.server, [process.execPath, LOAD, '127.0.0.1', '80', '4', 'fresh', '/lo']);
    assert.equal(out.trim().split('\n').length, 4);
    await cap.stdout.wait(/"path":"\/lo-3"/, 10000);
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    code = (await cap.stop()).code;
    server.kill('SIGTERM');
  }
  assert.equal(code, 0);
  const got = cap.stdout.all.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(got.map((e) => [e.path, e.status, e.server]), [0, 1, 2, 3].map((i) => [`/lo-${i}`, 200, '127.0.0.1:80']));
  assert.match(cap.stderr.all.join('\n'), /tcplens: attached to every interface/);
  // The kernel hands over each loopback packet twice (leaving, arriving); one copy is decoded.
  const summary = cap.stderr.all.find((l) => l.startsWith('tcplens http: summary'))!;
  const n = (k: string) => Number(new RegExp(` ${k}=(\\d+)`).exec(summary)![1]);
  assert.ok(n('packets') > 0);
  assert.equal(n('kernel_packets'), 2 * n('packets'), summary);
});

test('live `| head -1`: one exchange out, then tcplens detaches and exits 0 with its summary', { timeout: 120000 }, async () => {
  const server = pair.spawnIn(pair.server, [process.execPath, SERVER_SCRIPT, 'head-server', '80']);
  await new Lines(server, 'stdout').wait(/listening/, 15000);
  const proc = spawn('bash', ['-c', `set -o pipefail; ip netns exec ${pair.server.ns} "${process.execPath}" "${cliPath}" http --port 80 --json --block-timeout 5ms | head -1`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = new Lines(proc, 'stdout');
  const stderr = new Lines(proc, 'stderr');
  try {
    await stderr.wait(/tcplens: attached/, 20000);
    await pair.run(pair.server, [process.execPath, LOAD, '127.0.0.1', '80', '3', 'fresh', '/head']);
    const exited = proc.exitCode === null ? once(proc, 'exit') : Promise.resolve([proc.exitCode]);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    const [code] = await exited;
    clearTimeout(timer);
    for (let i = 0; i < 200 && !(stdout.done && stderr.done); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(code, 0, stderr.all.join('\n'));
    assert.equal(stdout.all.length, 1);
    assert.equal((JSON.parse(stdout.all[0]) as { path: string }).path, '/head-0');
    assert.ok(stderr.all.some((l) => l.startsWith('tcplens http: summary')), stderr.all.join('\n'));
    assert.ok(!stderr.all.some((l) => /TCPLENS_ERR|internal error/.test(l)), stderr.all.join('\n'));
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    server.kill('SIGTERM');
  }
});

test('a ring too small for a burst: the kernel\'s drops are counted and add up (kernel_packets = decoded + drops)', { timeout: 120000 }, async (t) => {
  const cap = await startIn(pair.server.ns, ['--iface', dev('s'), '--port', '80', '--json', '--block-size', '4096', '--block-count', '2', '--block-timeout', '50ms']);
  const wire = new FrameSender(pair.client.ns, dev('c'));
  let code: number | null;
  try {
    const conv = new TcpConversation({ client: '10.97.0.1', server: '10.97.0.2', clientPort: 43000, serverPort: 80 }).handshake();
    conv.send(true, 'x'.repeat(1000 * 1400), 1400);
    // Sent in one synchronous burst: 1000 frames of ~1.5 KB against a ring of 8 KB.
    for (const f of conv.frames) wire.send(f.frame);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    wire.close();
    code = (await cap.stop()).code;
  }
  assert.equal(code, 0);
  const summary = cap.stderr.all.find((l) => l.startsWith('tcplens http: summary'))!;
  const n = (k: string) => Number(new RegExp(` ${k}=(\\d+)`).exec(summary)![1]);
  t.diagnostic(summary);
  assert.ok(n('kernel_drops') > 0, summary);
  assert.equal(n('kernel_packets'), n('packets') + n('kernel_drops'), summary);
  assert.ok(n('ring_freezes') >= 0);
});

test('--netns NAME: run from this namespace, the socket made inside the other; a missing one is TCPLENS_ERR_NO_NETNS', { timeout: 120000 }, async () => {
  const server = pair.spawnIn(pair.server, [process.execPath, SERVER_SCRIPT, 'netns-server', '80']);
  await new Lines(server, 'stdout').wait(/listening/, 15000);
  const cap = await startTcplens(['http', '--netns', pair.server.ns, '--iface', 'lo', '--port', '80', '--json', '--block-timeout', '5ms']);
  let code: number | null;
  try {
    await pair.run(pair.server, [process.execPath, LOAD, '127.0.0.1', '80', '2', 'keepalive', '/ns']);
    await cap.stdout.wait(/"path":"\/ns-1"/, 10000);
  } finally {
    code = (await cap.stop()).code;
    server.kill('SIGTERM');
  }
  assert.equal(code, 0);
  assert.deepEqual(cap.stdout.all.map((l) => (JSON.parse(l) as { path: string }).path), ['/ns-0', '/ns-1']);
  assert.match(cap.stderr.all.join('\n'), new RegExp(`attached to lo in /run/netns/${pair.server.ns}`));
  const missing = await runTcplens(['http', '--netns', 'tcplens-no-such-ns', '--port', '80']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /TCPLENS_ERR_NO_NETNS/);
});

// tcplens accel must not change what applications see: an unmodified Node server and python
// client behave alike with and without it (half-close, close with data in flight, reset, a killed
// writer, poll readiness); connections to another namespace are passed; two namespaces using the
// same addresses and ports never get each other's data.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { enableAccel } from '../../src/capabilities/accel/accel.js';
import { accelStatus } from '../../src/capabilities/accel/status.js';
import { repoRoot } from '../../src/kernel/paths.js';
import { accelHarness, startTraffic } from './helpers/accel-harness.js';
import { NetPair } from './helpers/netns.js';
import { setTimeout as sleep } from 'node:timers/promises';

const fixtures = join(repoRoot, 'test', 'kernel', 'fixtures');

function inCgroup(cgroup: string, argv: string[]) {
  return spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function scenario(cgroup: string, port: number, only: string[]): Promise<{ server: string[]; client: string[] }> {
  const srv = inCgroup(cgroup, [process.execPath, join(fixtures, 'accel-server.mjs'), String(port)]);
  let sout = '';
  srv.stdout!.on('data', (d) => { sout += d; });
  while (!sout.includes('listening')) await sleep(20);
  const cli = inCgroup(cgroup, ['python3', join(fixtures, 'accel-client.py'), String(port), ...only]);
  let cout = '', cerr = '';
  cli.stdout!.on('data', (d) => { cout += d; });
  cli.stderr!.on('data', (d) => { cerr += d; });
  const [code] = await once(cli, 'exit');
  // One line per scenario from the server, however loaded the machine (a fixed wait missed the
  // killed writer's end once); the test's own time limit bounds it.
  const lines = () => sout.split('\n').filter((l) => l && l !== 'listening').length;
  for (let waited = 0; lines() < only.length && waited < 10000; waited += 50) await sleep(50);
  srv.kill();
  await once(srv, 'exit');
  assert.equal(code, 0, cerr);
  // The killed writer's byte count depends on timing: keep only how it ended.
  const server = sout.split('\n').filter((l) => l && l !== 'listening').map((l) => l.startsWith('killed ') ? `killed ${l.split(' ')[3]}` : l).sort();
  return { server, client: cout.trim().split('\n') };
}

test('half-close, close in flight, reset, a killed writer, readiness: the same as plain TCP', async (t) => {
  const h = accelHarness('sem');
  t.after(() => h.dispose());
  const port = 20000 + (process.pid % 20000);
  const only = ['half_close', 'close_in_flight', 'reset', 'killed'];
  const plain = await scenario(h.cgroup, port, only);
  enableAccel({ cgroup: h.cgroup, ports: [port] }, h.pinDir);
  const fast = await scenario(h.cgroup, port, only);
  const c = accelStatus(h.pinDir).counters!;
  t.diagnostic(`plain ${JSON.stringify(plain)}; counters ${JSON.stringify(c)}`);
  assert.deepEqual(fast, plain);
  assert.ok(plain.client[0].includes('not-readable readable reply-ok'), plain.client[0]);
  assert.ok(c.redirected_bytes > 5 << 20, 'the accel run did take the fast path');
  assert.equal(c.inserted, 8, 'both ends of the four connections');
});

// Found while building the bench: on this kernel (6.18) tcp_bpf_recvmsg answers a blocking recv
// with EAGAIN when it is woken without data (here: the ACK of our own FIN changes the socket's
// state). Plain TCP blocks until the reply. Nothing in BPF can change the receive path, so this
// stays a known difference until the kernel is fixed; the test shows it.
test('a blocking read after shutdown(SHUT_WR) blocks until the reply, as on plain TCP', { todo: 'kernel: tcp_bpf_recvmsg returns EAGAIN on a wake-up without data' }, async (t) => {
  const h = accelHarness('blk');
  t.after(() => h.dispose());
  const count = async () => {
    const p = inCgroup(h.cgroup, ['python3', join(fixtures, 'accel-blocking-read.py'), '0']);
    let out = '';
    p.stdout!.on('data', (d) => { out += d; });
    await once(p, 'exit');
    return Number(/EAGAIN (\d+)/.exec(out)?.[1] ?? -1);
  };
  const plain = await count();
  enableAccel({ cgroup: h.cgroup, ports: [] }, h.pinDir);
  const fast = await count();
  t.diagnostic(`EAGAIN from a blocking recv: plain ${plain}/50, accel ${fast}/50`);
  assert.equal(plain, 0);
  assert.equal(fast, 0);
});

test('connections to another namespace are passed, never redirected', async (t) => {
  const h = accelHarness('ns');
  const pair = new NetPair('ac');
  t.after(() => { pair.dispose(); h.dispose(); });
  const parent = join(pair.client.cgroup, '..');
  enableAccel({ cgroup: parent, ports: [] }, h.pinDir);
  const srv = pair.spawnIn(pair.server, ['python3', '-c',
    'import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("0.0.0.0",7777));s.listen(1);print("l",flush=True)\n' +
    'c,_=s.accept()\nn=0\nwhile True:\n d=c.recv(65536)\n if not d: break\n c.sendall(d)\nc.close()']);
  let sout = '';
  srv.stdout!.on('data', (d) => { sout += d; });
  while (!sout.includes('l')) await sleep(20);
  const out = await pair.run(pair.client, ['python3', '-c',
    // The writer is a thread of its own (an echo of 2 MiB sent before reading any of it deadlocks
    // once both directions' buffers are full), and the socket has a timeout, so Python polls before
    // each recv and retries the spurious EAGAIN of the known kernel difference: the client's end
    // is in the map (its peer is not), and what this test proves is that its bytes pass.
    `import socket,os,threading\ns=socket.create_connection(("${pair.server.ip4}",7777))\ns.settimeout(60)\nd=os.urandom(2<<20)\n` +
    'def w():\n s.sendall(d);s.shutdown(socket.SHUT_WR)\nt=threading.Thread(target=w);t.start()\n' +
    'g=b""\nwhile True:\n x=s.recv(65536)\n if not x: break\n g+=x\nt.join();print(g==d)']);
  assert.equal(out.trim(), 'True');
  const c = accelStatus(h.pinDir).counters!;
  assert.equal(c.redirected_bytes, 0);
  assert.equal(c.not_local, 1, 'the server end (its peer is in another namespace) never entered the map');
  assert.ok(c.no_peer_bytes > 0, 'the client end found no peer and went the normal way');
});

test('two namespaces using the same addresses and ports never get each other\'s data', async (t) => {
  const h = accelHarness('same');
  const pair = new NetPair('as');
  t.after(() => { pair.dispose(); h.dispose(); });
  const parent = join(pair.client.cgroup, '..');
  enableAccel({ cgroup: parent, ports: [] }, h.pinDir);
  const plan = { conns: 1, host: '127.0.0.1', port: 40000, clientPort: 40001, size: 8 << 20 };
  const [a, b] = await Promise.all([startTraffic(pair.client.cgroup, plan, pair.client.ns).result, startTraffic(pair.server.cgroup, plan, pair.server.ns).result]);
  for (const r of [a, b]) assert.deepEqual([r.errors, r.bad, r.conns], [[], [], 1]);
  const c = accelStatus(h.pinDir).counters!;
  assert.equal(c.inserted, 4, 'the same 4-tuple twice, told apart by namespace');
  assert.equal(c.insert_failed, 0);
  assert.equal(c.redirected_bytes, a.sent + b.sent);
});

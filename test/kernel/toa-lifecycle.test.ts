// tcplens toa over its life: bad input refused with a code and a hint (and nothing left behind),
// the enable lock, reconfiguration while connections flow (no connection ever gets a wrong
// client, established ones keep theirs), moving to another cgroup, and disable.
import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { BpfObject } from '../../src/kernel/bpf-object.js';
import { objectPath, repoRoot } from '../../src/kernel/paths.js';
import { TOA_OBJECT } from '../../src/capabilities/toa/toa.js';
import { toaTablesRodata } from '../../src/capabilities/shared/toa-tables.js';
import { parseCidr } from '../../src/net/addr.js';
import { DEFAULT_DIALECTS } from '../../src/net/toa.js';
import { toaLockPath } from '../../src/capabilities/toa/pinned.js';
import { processStart } from '../../src/capabilities/shared/lock.js';
import { Lines } from './helpers/netns.js';
import { SERVERS, ToaHarness, WRITE_ACK, claimed, shown, type CliResult } from './helpers/toa-harness.js';

function refused(r: CliResult, code: string): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^tcplens: ${code}: `));
  assert.match(r.stderr, /\n {2}hint: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

/** Python server that answers every line with what getpeername() says now (a long-lived connection). */
const PEER_NOW = (port: number) => ['python3', '-u', '-c', `
import socket, threading
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("::", ${port})); s.listen(16)
print("listening", flush=True)
def serve(c):
    for line in c.makefile("rb"):
        c.sendall(("%s %s\\n" % c.getpeername()[:2]).encode())
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`];

/** Node client that keeps one connection and asks every 50 ms who the server thinks it is; each
 * answer is printed with the time it arrived ("<ms> <addr> <port>"). */
const ASK_FOREVER = (host: string, port: number, localPort: number) => [process.execPath, '-e', `
const s = require('net').connect({ host: ${JSON.stringify(host)}, port: ${port}, localPort: ${localPort} });
let buf = '';
s.on('connect', () => setInterval(() => s.write('who\\n'), 50));
s.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { console.log(Date.now() + ' ' + buf.slice(0, i)); buf = buf.slice(i + 1); } });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`];

test('bad input is refused with a code and a hint, and leaves nothing behind', (t) => {
  const h = new ToaHarness('bad');
  t.after(() => h.dispose());
  const cg = ['--cgroup', h.server.cgroup];
  refused(h.cli(['enable', ...cg]), 'TCPLENS_ERR_BAD_CIDR');
  refused(h.cli(['enable', ...cg, '--trusted-lb', '10.0.0.300']), 'TCPLENS_ERR_BAD_CIDR');
  refused(h.cli(['enable', ...cg, '--trusted-lb', '10.0.0.0/33']), 'TCPLENS_ERR_BAD_CIDR');
  refused(h.cli(['enable', ...cg, '--trusted-lb', '0.0.0.0/0']), 'TCPLENS_ERR_BAD_CIDR');
  refused(h.cli(['enable', ...cg, '--trusted-lb', '10.0.0.1', '--toa', '254/9']), 'TCPLENS_ERR_BAD_TOA');
  refused(h.cli(['enable', ...cg, '--trusted-lb', '10.0.0.1', '--toa', 'bogus']), 'TCPLENS_ERR_BAD_TOA');
  refused(h.cli(['enable', '--cgroup', 'tcplens-no-such-cgroup', '--trusted-lb', '10.0.0.1']), 'TCPLENS_ERR_NO_CGROUP');
  refused(h.cli(['enable', ...cg, '--trusted-lb', '10.0.0.1', '--bogus']), 'TCPLENS_ERR_UNKNOWN_FLAG');
  refused(h.cli(['frobnicate']), 'TCPLENS_ERR_UNKNOWN_COMMAND');
  assert.equal(existsSync(h.pinDir), false);
  assert.deepEqual(h.attachedTo(h.server.cgroup), []);

  const status = h.cli(['status']);
  assert.equal(status.code, 0);
  assert.match(status.stdout, /not enabled/);
  assert.equal(h.status().enabled, false);
  const off = h.cli(['disable']);
  assert.equal(off.code, 0);
  assert.match(off.stdout, /not enabled.*nothing to do/);
});

test('a second enable while one holds the lock is refused; a dead holder\'s lock is taken over', async (t) => {
  const h = new ToaHarness('lck');
  const lock = toaLockPath(h.pinDir);
  const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(() => {
    holder.kill('SIGKILL');
    h.dispose();
    try { if (readFileSync(lock, 'utf8').startsWith(`${holder.pid} `)) unlinkSync(lock); } catch { /* gone */ }
  });
  await once(holder, 'spawn');
  mkdirSync(dirname(lock), { recursive: true });
  writeFileSync(lock, `${holder.pid} ${processStart(holder.pid!)}\n`, { flag: 'wx' });
  refused(h.cli(['enable', '--cgroup', h.server.cgroup, ...h.trustedFlags()]), 'TCPLENS_ERR_TOA_STATE');
  assert.equal(existsSync(h.pinDir), false, 'nothing pinned while another enable holds the lock');
  assert.equal(h.status().busy, holder.pid);

  holder.kill('SIGKILL');
  await once(holder, 'exit');
  const r = h.enable();
  assert.match(r.stderr, new RegExp(`took over a stale lock left by pid ${holder.pid}`));
  assert.equal(existsSync(lock), false, 'the lock is released after enable');
  h.disable();
});

test('reconfiguring under load never gives a connection a wrong client; established ones keep theirs', async (t) => {
  const h = new ToaHarness('cfg');
  t.after(() => h.dispose());
  const w = h.writer(WRITE_ACK);
  h.enable();
  await h.serve(PEER_NOW(7000));
  await h.serve(SERVERS.nodeTcp(7001, '::'));

  // One long-lived connection, established under the first configuration.
  const keep = claimed(7, 4);
  w.set(36000, keep);
  const asker = h.pair.spawnIn(h.client, ASK_FOREVER(h.server.ip4, 7000, 36000));
  const answers = new Lines(asker, 'stdout');
  /** The first answer the server gave after now (lines read late, while a synchronous CLI run
   * blocked this process, are older than that and do not count). */
  const latest = async () => {
    const since = Date.now();
    for (let waited = 0; waited < 5000; waited += 20) {
      const fresh = answers.all.find((l) => Number(l.split(' ')[0]) > since);
      if (fresh) return fresh.slice(fresh.indexOf(' ') + 1);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no answer from the long-lived connection since ${since}: ${answers.all.slice(-3).join(' | ')}`);
  };
  assert.equal(await latest(), shown(keep, true));

  // Connections stream in (8 at a time, until stopped) while the configuration changes five
  // times: the programs are swapped in place under them.
  const want = new Map<number, string>();
  const [first, last] = [10000, 59999];
  for (let p = first; p <= last; p++) {
    const c = claimed(p - first, p % 2 ? 6 : 4);
    w.set(p, c, 254);
    want.set(p, shown(c, true));
  }
  const load = h.pair.spawnIn(h.client, [process.execPath, join(repoRoot, 'dist', 'test', 'kernel', 'helpers', 'tcp-client.js'),
    '--host', h.server.ip4, '--port', '7001', '--port-range', `${first}-${last}`, '--concurrency', '8']);
  const done = new Lines(load, 'stdout');
  const loadErr = new Lines(load, 'stderr');
  await done.wait(/localPort/);
  const progIds = new Set<number>();
  for (let k = 0; k < 5; k++) {
    const n = done.all.length;
    const r = h.enable(k % 2 ? [] : ['--toa', '200/8']);
    assert.match(r.stdout, /reconfigured in place/);
    progIds.add(h.status().programs.find((p) => p.program === 'toa_sockops')!.progId);
    // Connections go on completing (a loaded machine may take a moment to show it).
    for (let waited = 0; done.all.length <= n && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    assert.ok(done.all.length > n, `connections completed across reconfiguration ${k}`);
  }
  if (load.exitCode === null) {
    load.kill();
    await once(load, 'exit');
  } else {
    assert.equal(load.exitCode, 0, `load: ${loadErr.all.join('\n')}`);
  }
  assert.equal(progIds.size, 5, 'each enable loaded new programs');
  const seen = done.all.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { localPort: number; seen: string });
  assert.ok(seen.length > 500, `enough connections during the reconfigurations (${seen.length})`);
  t.diagnostic(`${seen.length} connections completed while the configuration changed 5 times`);
  const wrong = seen.filter((r) => r.seen !== want.get(r.localPort));
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} of ${seen.length} connections saw a wrong or missing client during reconfiguration`);
  assert.equal(await latest(), shown(keep, true), 'the long-lived connection keeps its client across reconfiguration');
  assert.deepEqual(h.attachedTo(h.server.cgroup).sort(), ['toa_getpeername4', 'toa_getpeername6', 'toa_sockops']);

  // Stop trusting this balancer: new connections show it, the established one keeps its client.
  const before = h.status().counters!;
  h.cli(['enable', '--cgroup', h.server.cgroup, '--trusted-lb', '192.0.2.1/32']);
  assert.deepEqual(h.status().trusted, ['192.0.2.1/32']);
  w.set(37000, claimed(37000, 4));
  const untrusted = await h.connect(['--host', h.server.ip4, '--port', '7001', '--ports', '37000']);
  assert.equal(untrusted[0].seen, `::ffff:${h.client.ip4} 37000`);
  assert.equal(h.status().counters!.untrusted - before.untrusted, 1);
  assert.equal(await latest(), shown(keep, true));

  // Move to another cgroup: the new one gets the programs, the server's loses them.
  const moved = h.cli(['enable', '--cgroup', h.client.cgroup, ...h.trustedFlags()]);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stdout, /replaced the previous attachment/);
  assert.deepEqual(h.attachedTo(h.server.cgroup), []);
  assert.deepEqual(h.attachedTo(h.client.cgroup).sort(), ['toa_getpeername4', 'toa_getpeername6', 'toa_sockops', 'toa_writer']);
  assert.equal(h.status().cgroup?.path, h.client.cgroup);
  assert.equal(await latest(), `::ffff:${h.client.ip4} 36000`, 'outside the toa cgroup, the balancer again');

  // Back on the server's cgroup, then off: applications see the balancer; nothing is left.
  h.enable();
  assert.equal(await latest(), shown(keep, true), 'the clients map survived the move');
  h.disable();
  assert.equal(await latest(), `::ffff:${h.client.ip4} 36000`);
  assert.deepEqual(h.attachedTo(h.server.cgroup), []);
  assert.deepEqual(h.attachedTo(h.client.cgroup), ['toa_writer']);
  assert.equal(existsSync(h.pinDir), false);
  asker.kill();
});

test('an interrupted run\'s leftovers are cleaned up by the next enable', (t) => {
  const h = new ToaHarness('int');
  t.after(() => h.dispose());
  h.enable();
  // What a run killed between pinning its new links and renaming them leaves behind: a live
  // sock_ops link pinned under a name that is not one of ours.
  const extra = join(h.pinDir, 'new-sockops');
  const obj = BpfObject.open(objectPath(TOA_OBJECT));
  try {
    obj.setRodata(toaTablesRodata(obj, { dialects: [...DEFAULT_DIALECTS], trusted: [parseCidr(h.client.ip4)] }));
    obj.load();
    obj.attachCgroup('toa_sockops', h.server.cgroup).pin(extra);
  } finally {
    obj.close();
  }
  assert.equal(h.attachedTo(h.server.cgroup).filter((n) => n === 'toa_sockops').length, 2);
  assert.ok(h.status().problems.some((p) => p.includes('new-sockops')));
  const again = h.enable();
  assert.match(again.stderr, /removed new-sockops, left by an interrupted run/);
  assert.equal(existsSync(extra), false);
  assert.deepEqual(h.status().problems, []);
  assert.deepEqual(h.attachedTo(h.server.cgroup).sort(), ['toa_getpeername4', 'toa_getpeername6', 'toa_sockops']);
  h.disable();
});

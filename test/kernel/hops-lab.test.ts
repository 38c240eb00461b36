// tcplens hops in the lab: clients behind 0, 1 and 3 routers, a FULLNAT balancer, real servers,
// IPv4 and IPv6. The SYN-ACK from a VIP comes from a real server: it is forwarded by the
// balancer and then by each router, so a client behind h routers is h + 1 hops away (the same
// count the lab test checks on the server side: TTL 64 - hops - 1).
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HopsProber } from '../../src/capabilities/hops/hops.js';
import { runHops, type HopsResult } from '../../src/capabilities/hops/run.js';
import { attachSocketFilter, closeFd, EINPROGRESS, openTcpSocket, socketCookie, socketError, startConnect, whenConnected } from '../../src/kernel/tcp-connect.js';
import { labDown, labUp, leftovers } from '../../src/lab/lab.js';
import { startCapture } from '../../src/lab/capture.js';
import { runIn, sysctl, withNetns } from '../../src/lab/netns.js';
import { parseAddr } from '../../src/net/addr.js';
import type { LabState } from '../../src/lab/state.js';
import { cliPath, runTcplens } from './helpers/tcplens-cli.js';
import { Lines } from './helpers/netns.js';

const name = `h${process.pid}`;
let lab: LabState;
let prober: HopsProber;
let I = 0;
const ns = (node: string) => lab.topology.nodes.find((n) => n.name === node)!.netns;
const inNs = (node: string) => <T>(fn: () => T): T => withNetns(ns(node), fn);
const addr = (text: string, port: number) => ({ ...parseAddr(text)!, port });
const etcNetns = () => `/etc/netns/${ns('client2')}`;

before(async () => {
  lab = await labUp({ name, clients: 3, servers: 2, hops: [0, 1, 3], ipv6: true, port: 80,
    toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 } });
  I = lab.topology.options.index;
  // Silent loss on the path (timeouts): the balancer discards what it would forward there.
  runIn(ns('lb'), ['ip', 'route', 'add', 'blackhole', `10.${I}.254.0/24`]);
  runIn(ns('lb'), ['ip', '-6', 'route', 'add', 'blackhole', `fd00:${I}:fe::/64`]);
  // Local routing verdicts in client2: unreachable (EHOSTUNREACH) and a local blackhole, which
  // connect() answers with EINVAL at once (measured), so it is no way to make a timeout.
  runIn(ns('client2'), ['ip', 'route', 'add', 'unreachable', `10.${I}.253.0/24`]);
  runIn(ns('client2'), ['ip', '-6', 'route', 'add', 'unreachable', `fd00:${I}:fd::/64`]);
  runIn(ns('client2'), ['ip', 'route', 'add', 'blackhole', `10.${I}.252.0/24`]);
  // Names for client2 only: `ip netns exec` mounts /etc/netns/<ns>/* over /etc. The resolver is
  // the namespace's own loopback, where nothing listens: unknown names fail locally, at once.
  mkdirSync(etcNetns(), { recursive: true });
  writeFileSync(join(etcNetns(), 'hosts'), `127.0.0.1 localhost\n${lab.topology.vip4} vip.hops.test\n${lab.topology.vip6} vip.hops.test\n`);
  writeFileSync(join(etcNetns(), 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  prober = HopsProber.open();
});

after(async () => {
  prober?.close();
  rmSync(etcNetns(), { recursive: true, force: true });
  try { if (readdirSync('/etc/netns').length === 0) rmdirSync('/etc/netns'); } catch { /* someone else's, or gone */ }
  await labDown(name);
  assert.deepEqual(leftovers(name), []);
});

test('the distance to the VIP is exact behind 0, 1 and 3 routers, IPv4 and IPv6', { timeout: 30000 }, async () => {
  const t = lab.topology;
  for (const c of t.clients) {
    for (const vip of [t.vip4, t.vip6!]) {
      for (let k = 0; k < 2; k++) { // both real servers answer in turn
        const o = await prober.probe(addr(vip, 80), { timeoutMs: 3000, inNetns: inNs(c.node) });
        assert.equal(o.status, 'open', `${c.node} -> ${vip}: ${o.reason}`);
        assert.equal(o.ttl, 64 - c.hops - 1, `${c.node} (${c.hops} routers) -> ${vip}`);
        assert.equal(o.initialTtl, 64);
        assert.equal(o.hops, c.hops + 1);
        assert.ok(o.connectMs !== null && o.connectMs > 0 && o.connectMs < 1000, `connect_ms ${o.connectMs}`);
      }
    }
  }
});

// net.ipv6.conf.all.hop_limit alone does not reach a device that already exists (measured: the
// SYN-ACK kept 64); IPv6 sockets use their device's own entry, so eth0's is set too.
function setServerTtl(v: number): void {
  for (const s of lab.topology.servers) {
    withNetns(ns(s.node), () => {
      sysctl('net.ipv4.ip_default_ttl', String(v));
      sysctl('net.ipv6.conf.all.hop_limit', String(v));
      sysctl('net.ipv6.conf.eth0.hop_limit', String(v));
    });
  }
}

test('servers whose default TTL / hop limit is 128 or 255 are inferred as such', { timeout: 30000 }, async () => {
  const t = lab.topology;
  const c = t.clients[2]; // 3 routers
  try {
    for (const start of [128, 255]) {
      setServerTtl(start);
      for (const vip of [t.vip4, t.vip6!]) {
        for (let k = 0; k < 2; k++) {
          const o = await prober.probe(addr(vip, 80), { timeoutMs: 3000, inNetns: inNs(c.node) });
          assert.equal(o.status, 'open');
          assert.equal(o.ttl, start - c.hops - 1, `start ${start}, ${vip}`);
          assert.equal(o.initialTtl, start);
          assert.equal(o.hops, c.hops + 1);
        }
      }
    }
  } finally {
    setServerTtl(64);
  }
});

/** tcplens hops as a user runs it, inside client2's namespace. */
async function cli(args: string[]): Promise<{ code: number | null; rows: HopsResult[]; stderr: string; ms: number }> {
  const started = Date.now();
  const r = await runTcplens(['hops', ...args], { netns: ns('client2') });
  return { code: r.code, rows: r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)), stderr: r.stderr, ms: Date.now() - started };
}

test('one run: open, refused, timed out, unreachable, unresolvable and malformed targets, each its own status', { timeout: 30000 }, async () => {
  const t = lab.topology;
  const s1 = t.servers[0];
  const targets = [
    `tcp4://${t.vip4}:80`, `tcp6://[${t.vip6}]:80`, 'vip.hops.test:80', 'tcp6://vip.hops.test:80',
    `${s1.ip4}:81`, `[${s1.ip6}]:81`, `${t.vip4}:81`,
    `10.${I}.254.1:80`, `[fd00:${I}:fe::1]:80`,
    `10.${I}.253.1:80`, `[fd00:${I}:fd::1]:80`, `10.${I}.252.1:80`,
    'nope.hops.test:80', 'x:0', `tcp4://[${t.vip6}]:80`,
  ];
  const r = await cli([...targets, '--json', '--timeout', '1s']);
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
  const pick = (o: HopsResult) => [o.target, o.address, o.family, o.status, o.ttl, o.initial_ttl, o.hops, o.error];
  // A name's addresses come in the resolver's order (RFC 6724 puts IPv6 first): compare by family.
  const rows = [...r.rows.slice(0, 2), ...r.rows.slice(2, 4).sort((a, b) => a.family! - b.family!), ...r.rows.slice(4)];
  // client2 is behind 1 router: a real server is 2 hops away, the balancer itself 1.
  assert.deepEqual(rows.map(pick), [
    [targets[0], `${t.vip4}:80`, 4, 'open', 62, 64, 2, null],
    [targets[1], `[${t.vip6}]:80`, 6, 'open', 62, 64, 2, null],
    [targets[2], `${t.vip4}:80`, 4, 'open', 62, 64, 2, null],
    [targets[2], `[${t.vip6}]:80`, 6, 'open', 62, 64, 2, null],
    [targets[3], `[${t.vip6}]:80`, 6, 'open', 62, 64, 2, null],
    [targets[4], `${s1.ip4}:81`, 4, 'refused', 62, 64, 2, 'TCPLENS_ERR_REFUSED'],
    [targets[5], `[${s1.ip6}]:81`, 6, 'refused', 62, 64, 2, 'TCPLENS_ERR_REFUSED'],
    [targets[6], `${t.vip4}:81`, 4, 'refused', 63, 64, 1, 'TCPLENS_ERR_REFUSED'],
    [targets[7], `10.${I}.254.1:80`, 4, 'timeout', null, null, null, 'TCPLENS_ERR_TIMEOUT'],
    [targets[8], `[fd00:${I}:fe::1]:80`, 6, 'timeout', null, null, null, 'TCPLENS_ERR_TIMEOUT'],
    [targets[9], `10.${I}.253.1:80`, 4, 'unreachable', null, null, null, 'TCPLENS_ERR_UNREACHABLE'],
    [targets[10], `[fd00:${I}:fd::1]:80`, 6, 'unreachable', null, null, null, 'TCPLENS_ERR_UNREACHABLE'],
    [targets[11], `10.${I}.252.1:80`, 4, 'unreachable', null, null, null, 'TCPLENS_ERR_UNREACHABLE'],
    [targets[12], null, null, 'error', null, null, null, 'TCPLENS_ERR_RESOLVE'],
    [targets[13], null, null, 'error', null, null, null, 'TCPLENS_ERR_BAD_PORT'],
    [targets[14], null, null, 'error', null, null, null, 'TCPLENS_ERR_BAD_TARGET'],
  ]);
  for (const o of r.rows) {
    assert.deepEqual(Object.keys(o), ['target', 'address', 'family', 'status', 'ttl', 'initial_ttl', 'hops', 'connect_ms', 'error']);
    if (o.ttl !== null) assert.ok(typeof o.connect_ms === 'number' && o.connect_ms > 0 && o.connect_ms < 1000, `${o.target}: ${o.connect_ms}`);
    if (o.status === 'timeout') assert.equal(o.connect_ms, null);
  }
  assert.ok(r.ms < 4000, `took ${r.ms} ms for a 1 s timeout`);

  const good = await cli([`tcp4://${t.vip4}:80`, 'vip.hops.test:80', '--json', '--count', '3', '--timeout', '1s']);
  assert.equal(good.code, 0, good.stderr);
  assert.equal(good.rows.length, 3);
  for (const o of good.rows) {
    assert.equal(o.hops, 2);
    assert.equal(o.probes, 3);
    assert.equal(o.replies, 3);
    assert.deepEqual(o.stats!.hops, { min: 2, median: 2, max: 2 });
    assert.ok(o.stats!.connect_ms!.min <= o.connect_ms! && o.connect_ms! <= o.stats!.connect_ms!.max);
  }
});

test('later segments with another TTL do not change the result: only the first reply counts', { timeout: 30000 }, async () => {
  const t = lab.topology;
  const c = t.clients[2]; // 3 routers: the SYN-ACK arrives with 64 - 4 = 60, the data with 9 - 4 = 5
  const server = spawn('ip', ['netns', 'exec', ns(t.servers[0].node), process.execPath, join(import.meta.dirname, 'helpers', 'ttl-server.js'), '8081', '9'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const file = join(tmpdir(), `tcplens-${name}-later.pcap`);
  try {
    await new Lines(server, 'stdout').wait(/listening/);
    for (const [dst, family] of [[t.servers[0].ip4, 4], [t.servers[0].ip6!, 6]] as const) {
      const cap = await startCapture(ns(c.node), 'eth0', file, 'tcp port 8081');
      const fd = withNetns(ns(c.node), () => openTcpSocket(family));
      let rec: ReturnType<HopsProber['reply']> = null;
      try {
        attachSocketFilter(fd, prober.programFd);
        const cookie = socketCookie(fd);
        assert.equal(startConnect(fd, family, parseAddr(dst)!.bytes, 8081), EINPROGRESS);
        await new Promise<void>((r) => whenConnected(fd, r));
        assert.equal(socketError(fd), 0);
        // Wait until the data (and the FIN) has reached the socket, through the filter.
        for (let i = 0; i < 200 && (prober.reply(cookie, false)?.later ?? 0) < 3; i++) await new Promise((r) => setTimeout(r, 10));
        rec = prober.reply(cookie);
      } finally {
        closeFd(fd);
      }
      const segs = (await cap.stop()).filter((s) => s.sport === 8081);
      rmSync(file, { force: true });
      const data = segs.filter((s) => s.payloadLen > 0);
      assert.ok(data.length >= 3 && data.every((s) => s.ttl === 5), `data segments arrived with TTL 5: ${data.map((s) => s.ttl)}`);
      assert.equal(segs.find((s) => s.flags === 0x12)?.ttl, 60, 'the SYN-ACK arrived with 60');
      assert.ok(rec, 'a record');
      assert.equal(rec.ttl, 60, `IPv${family}: the first reply's TTL, not the later segments'`);
      assert.ok(rec.later >= 3, `later packets were seen (${rec.later}) and ignored`);
    }
  } finally {
    server.kill('SIGTERM');
  }
});

test('500 targets across the lab finish in about one timeout, leaving no descriptor behind', { timeout: 60000 }, async () => {
  const t = lab.topology;
  // What the probes could leave: sockets, epoll and eventfd descriptors, BPF objects. Compared
  // as (fd, what) pairs: anything open after that was not open before is a leak.
  const fds = () => new Set(readdirSync('/proc/self/fd').map((fd) => { try { return `${fd} ${readlinkSync(`/proc/self/fd/${fd}`)}`; } catch { return ''; } })
    .filter((l) => /socket:|eventpoll|eventfd|bpf/.test(l)));
  const targets: string[] = [];
  for (let i = 0; i < 100; i++) {
    targets.push(`${t.vip4}:80`, `[${t.vip6}]:80`, `${t.servers[i % 2].ip4}:${1000 + i}`,
      `10.${I}.254.${1 + i}:80`, `[fd00:${I}:fe::${(1 + i).toString(16)}]:80`);
  }
  const before = fds();
  const p = HopsProber.open();
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, p.inFlight); }, 50);
  const started = Date.now();
  try {
    const rows = await runHops(p, targets, { count: 1, timeoutMs: 1500, concurrency: 512, inNetns: inNs('client1') });
    const ms = Date.now() - started;
    assert.equal(rows.length, 500);
    const by = (st: string) => rows.filter((r) => r.result.status === st);
    assert.equal(by('open').length, 200);
    assert.equal(by('refused').length, 100);
    assert.equal(by('timeout').length, 200);
    assert.ok([...by('open'), ...by('refused')].every((r) => r.result.hops === 1), 'client1 is wired to the balancer: 1 hop');
    assert.ok(ms < 1500 + 1500, `took ${ms} ms for a 1.5 s timeout`);
    assert.ok(peak >= 200, `probes ran side by side (peak ${peak})`);
    const c = p.counters();
    assert.equal(c.replies, 300);
    assert.equal(c.lost, 0);
    assert.equal(p.inFlight, 0);
  } finally {
    clearInterval(sampler);
    p.close();
  }
  await new Promise((r) => setTimeout(r, 100)); // the shared waiter gives its fds back after its last wait
  assert.deepEqual([...fds()].filter((f) => !before.has(f)), [], 'no socket, epoll or BPF descriptor left open');
});

test('a closed stdout (| head -1) ends a run at once and cleanly; nothing stays loaded', { timeout: 30000 }, async () => {
  const t = lab.topology;
  const filters = () => runIn(ns('client2'), ['bpftool', 'prog', 'show']).split('\n').filter((l) => /first_reply/.test(l)).map((l) => l.split(':')[0]);
  const loaded = filters(); // this test file's own prober
  const targets = [`${t.vip4}:80`, ...Array.from({ length: 20 }, (_, i) => `10.${I}.254.${i + 1}:80`)];
  const errFile = join(tmpdir(), `tcplens-${name}-head.err`);
  for (const mode of [['--json'], []]) {
    const started = Date.now();
    // A real pipe to a real head: the table's header or the first object, then head is gone
    // while 20 probes still wait out a 10 s timeout.
    const script = `n="$1"; c="$2"; shift 2; ip netns exec "$0" "$n" "$c" hops "$@" 2>"${errFile}" | head -1; echo "status \${PIPESTATUS[0]}"`;
    const p = spawn('bash', ['-c', script, ns('client2'), process.execPath, cliPath, ...targets, ...mode, '--timeout', '10s'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    await once(p, 'exit');
    const ms = Date.now() - started;
    const err = readFileSync(errFile, 'utf8');
    rmSync(errFile, { force: true });
    const [first, status] = out.trim().split('\n');
    if (mode.length) assert.equal(JSON.parse(first).status, 'open');
    else assert.match(first, /^TARGET\s+ADDRESS/);
    assert.ok(ms < 3000, `${mode.join('') || 'table'}: ended in ${ms} ms, long before the 10 s timeout`);
    assert.equal(status, 'status 1', 'not every target was measured');
    assert.doesNotMatch(err, /^\s+at |TCPLENS_ERR_INTERNAL|EPIPE/m, err);
  }
  assert.deepEqual(filters(), loaded, 'the CLI\'s filter is gone with it');
});

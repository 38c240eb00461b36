// `tcplens lab demo`, the README's first command: it must show every client's real address next
// to the balancer address the server's socket saw, and leave nothing behind (unless --keep).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { labDown, leftovers } from '../../src/lab/lab.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const name = `d${process.pid}`;

after(async () => {
  await labDown(name).catch(() => {});
  await labDown(`${name}i`).catch(() => {});
  await labDown(`${name}k`).catch(() => {});
  for (const n of [name, `${name}i`, `${name}k`]) await labDown(`${n}-gw`).catch(() => {});
});

function accelPrograms(): number[] {
  const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' })) as { id: number; name?: string }[];
  return progs.filter((p) => p.name === 'accel_sockops' || p.name === 'accel_msg').map((p) => p.id);
}

function demo(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, 'lab', 'demo', ...args], { encoding: 'utf8', timeout: 90000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('the demo shows, for every client, the balancer on the server socket and the real client from tcplens', () => {
  const r = demo(['--name', name, '-6']);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  const rows = r.out.slice(0, r.out.indexOf('Hop distance')).split('\n').filter((l) => /^\s+client\d+\s/.test(l)).map((l) => l.trim().split(/\s{2,}/));
  // client, hops, own address, server, what the server socket saw, what tcplens reports, verdict
  assert.equal(rows.length, 3 * 2 * 2, 'three clients, one request per server, IPv4 and IPv6');
  assert.deepEqual([...new Set(rows.map((x) => x[0]))], ['client1', 'client2', 'client3']);
  assert.deepEqual([...new Set(rows.map((x) => x[1]))], ['0', '1', '2'], 'the default demo puts clients 0, 1 and 2 hops away');
  for (const [, , own, server, sees, reports, verdict] of rows) {
    assert.match(server, /^server[12]$/);
    assert.match(sees, /^(10\.\d+\.0\.1|\[fd00:\d+::1\]):\d+ \(balancer\)$/);
    assert.equal(reports.replace(/ \(TOA \d+\/\d+\)$/, ''), own, 'tcplens reports the client socket\'s own address');
    assert.equal(verdict, 'real client');
  }
  const own = rows.map((x) => x[2].replace(/:\d+$/, ''));
  assert.equal(new Set(own).size, 6, 'six distinct client addresses (3 clients x 2 families)');
  assert.match(r.out, /12 of 12 server sockets saw the balancer.*real client of 12 of 12/);
  // HTTP on the wire between the balancer and the servers: one exchange per request, none lost.
  assert.match(r.out, /tcplens http on the balancer's server ports saw 12 HTTP exchanges for 12 requests \(12 answered 2xx\/3xx; per server .*kernel drops 0\)/);
  // Hop distance both ways: routers + 1 (the balancer forwards), measured by hops and by accept.
  const hopRows = r.out.slice(r.out.indexOf('Hop distance')).split('\n').filter((l) => /^\s+client\d+\s/.test(l)).map((l) => l.trim().split(/\s{2,}/));
  assert.equal(hopRows.length, 3 * 2, r.out);
  for (const [, routers, , probed, accepted] of hopRows) {
    assert.equal(probed, String(Number(routers) + 1), `tcplens hops: ${hopRows.join(' | ')}`);
    assert.equal(accepted, String(Number(routers) + 1), `tcplens accept: ${hopRows.join(' | ')}`);
  }
  // accel: a local connection in a server node, plain then accelerated; its counters say every byte
  // sent took the fast path (0 if accel stopped redirecting), then it is disabled again.
  const a = /plain (\d+) MB\/s, accel (\d+) MB\/s \((\d+\.\d+)x\); redirected (\d+) bytes of the (\d+) bytes sent \(all of them\); disabled again, nothing attached or pinned/.exec(r.out);
  assert.ok(a, `accel section missing or wrong:\n${r.out}`);
  assert.equal(a[4], a[5], 'bytes redirected = bytes sent');
  assert.equal(Number(a[5]), 256 << 20);
  assert.deepEqual(accelPrograms(), [], 'no accel program left loaded');
  // The gateway tier, briefly: gw1's planted skew is found and named, the balancer's tier is even.
  assert.match(r.out, /tier 1 {2}lb -> gateways: 240 requests, skew 1\.00/);
  assert.match(r.out, /verdict: SKEWED at tier 2 \(a gateway's choice of pod\): gw1 sends 70\.0% to pod1 \(expected 25\.0%\).*confident\)/);
  assert.deepEqual(leftovers(name), [], 'the demo took its lab down');
  assert.deepEqual(leftovers(`${name}-gw`), [], 'and its gateway lab');
});

test('demo interrupted while accel is on: nothing attached, pinned or left in a cgroup', async () => {
  const n = `${name}i`;
  const child = spawn(process.execPath, [CLI, 'lab', 'demo', '--name', n, '--clients', '1', '--servers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 90000);
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
    if (/accel: enabled on/.test(err)) child.kill('SIGINT');
  });
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  assert.match(err, /accel: enabled on/, err);
  assert.notEqual(code, 0, 'an interrupted demo does not report success');
  assert.deepEqual(accelPrograms(), [], 'no accel program left loaded');
  assert.deepEqual(leftovers(n), [], `nothing of the lab left: ${err}`);
});

test('demo --keep leaves the lab up for a look around', async () => {
  const r = demo(['--name', `${name}k`, '--keep', '--clients', '1', '--servers', '1']);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  assert.match(r.out, /The lab stays up/);
  assert.ok(leftovers(`${name}k`).length > 0);
  assert.equal(await labDown(`${name}k`), true);
  assert.deepEqual(leftovers(`${name}k`), []);
});

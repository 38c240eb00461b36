// Through the lab's FULLNAT balancer, a client that writes its own TOA (forging 6.6.6.6) on its
// SYN and ACK: the balancer adds its TOA in front of it, so the server receives two. That client is
// never reported by accept, nor handed to applications by toa, as 6.6.6.6: by default two TOAs are
// a conflict (no client at all); with --toa-conflict first, the balancer's own (the first) is used.
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { createCgroup } from '../../src/kernel/cgroup.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import { CLIENT_SCRIPT } from '../../src/lab/demo.js';
import type { LabState } from '../../src/lab/state.js';
import { encodeToa } from '../../src/net/toa.js';
import { parseAddr } from '../../src/net/addr.js';
import type { AcceptRecord } from '../../src/capabilities/accept/accept.js';
import { startTcplens } from './helpers/tcplens-cli.js';
import { ToaWriter } from './helpers/toa-writer.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const name = `g${process.pid}`;
const pinDir = `/sys/fs/bpf/tcplens/toa-forge-${process.pid}`;
const FORGED = { addr: '6.6.6.6', port: 6666 };
let lab: LabState;
let cg: ReturnType<typeof createCgroup>;
let writer: ToaWriter;

before(async () => {
  lab = await labUp({ name, clients: 1, servers: 1, hops: [1], ipv6: false, port: 80, toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 } });
  cg = createCgroup(`tcplens-test-forge-${process.pid}`);
  writer = new ToaWriter(cg.path);
  writer.forAll(encodeToa(254, 4, parseAddr(FORGED.addr)!.bytes, FORGED.port));
});

after(async () => {
  writer?.close();
  toa(['disable']);
  cg?.remove();
  await labDown(name);
});

function toa(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, 'toa', ...args], { encoding: 'utf8', timeout: 30000, env: { ...process.env, TCPLENS_TOA_PIN_DIR: pinDir } });
  assert.equal(r.status, 0, `toa ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** One request from client1, made by a process in the forging cgroup; what both ends saw. */
async function request(): Promise<{ client: string; peer: string }> {
  const ns = lab.topology.nodes.find((n) => n.name === 'client1')!.netns;
  const p = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "$2" "$3" "$4" 80 1', cg.path, ns, process.execPath, CLIENT_SCRIPT, lab.topology.vip4],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.on('data', (d) => { out += d; });
  const timer = setTimeout(() => p.kill('SIGKILL'), 20000);
  await once(p, 'exit');
  clearTimeout(timer);
  return JSON.parse(out.trim());
}

for (const policy of ['reject', 'first'] as const) {
  test(`--toa-conflict ${policy}: the forged address is never the client, for accept or for the application`, async () => {
    const lb = lab.topology.lbAddr4;
    toa(['enable', '--cgroup', lab.cgroup, '--trusted-lb', lb, '--toa-conflict', policy]);
    const t = await startTcplens(['accept', '--json', '--merge-window', '0', '--cgroup', lab.cgroup, '--trusted-lb', lb, '--toa-conflict', policy]);
    const seen = await request();
    await t.stdout.wait(/"local"/, 5000);
    const r = await t.stop();
    const ev = r.stdout.map((l) => JSON.parse(l) as AcceptRecord).find((e) => e.peer === seen.peer || e.toa?.claimed === seen.client)!;
    assert.ok(ev, r.stdout.join('\n'));
    assert.equal(ev.malformed, 'conflict', 'two TOAs are flagged, whatever the policy');
    assert.notEqual(ev.client, `${FORGED.addr}:${FORGED.port}`);
    assert.notEqual(seen.peer, `${FORGED.addr}:${FORGED.port}`, 'the application never sees the forged address');
    if (policy === 'reject') {
      assert.equal(ev.client, null);
      assert.match(seen.peer, new RegExp(`^${lb.replace(/\./g, '\\.')}:`), 'the application sees the balancer');
    } else {
      assert.equal(ev.client, seen.client, 'the balancer\'s TOA, written first, names the real client');
      assert.equal(seen.peer, seen.client, 'and the application gets it');
    }
    const status = JSON.parse(toa(['status', '--json'])) as { counters: { conflict: number } };
    assert.ok(status.counters.conflict >= 1, JSON.stringify(status.counters));
    assert.ok(r.stderr.some((l) => /conflict 1,/.test(l)), r.stderr.join('\n'));
    toa(['disable']);
  });
}

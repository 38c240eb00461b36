// Bad input around the gateway lab, through the real CLI: a --netns that does not exist (or the
// same namespace twice) stops before anything is attached; a namespace deleted while captured is
// let go at once (its devices really disappear), the capture of the others goes on, and what it
// saw there is printed, then the summary, exit 1; when the last one goes the capture ends by
// itself; a --skew that does not parse builds nothing; a probe to a lab address with no listener
// gives a coded error per request and exit 1.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { leftovers } from '../../src/lab/lab.js';
import { POD_PORT } from '../../src/lab/gateway-tier.js';
import { repoRoot } from '../../src/kernel/paths.js';
import { useGatewayLab } from './helpers/gateway-lab.js';
import { runTcplens, startTcplens } from './helpers/tcplens-cli.js';

const gl = useGatewayLab('hb');
const ns = gl.ns;
const LOAD = join(repoRoot, 'dist', 'test', 'kernel', 'helpers', 'http-load.js');
const noStack = (stderr: string) => assert.doesNotMatch(stderr, /^\s+at .*:\d+:\d+\)?$/m, 'no stack trace');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function load(count: number, prefix: string): void {
  execFileSync('ip', ['netns', 'exec', ns('client1'), process.execPath, LOAD, gl.state.topology.vip4, '80', String(count), 'fresh', prefix], { timeout: 60000 });
}

/** The device still exists (its namespace too): ip -n NS link show DEV succeeds. */
const hasLink = (netns: string, dev: string) => spawnSync('ip', ['-n', netns, 'link', 'show', dev], { stdio: 'ignore' }).status === 0;

test('a --netns that does not exist, next to one that does: TCPLENS_ERR_NO_NETNS before anything is attached; the same namespace twice is refused', { timeout: 60000 }, async () => {
  const r = await runTcplens(['http', '--netns', ns('gw1'), '--netns', 'tcplens-no-such-ns', '--port', '80']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /TCPLENS_ERR_NO_NETNS: network namespace tcplens-no-such-ns does not exist \(\/run\/netns\/tcplens-no-such-ns\)\n {2}hint: /);
  assert.doesNotMatch(r.stderr, /attached|summary/);
  noStack(r.stderr);
  const pid = gl.state.servers.find((s) => s.node === 'gw1')!.pid;
  const twice = await runTcplens(['http', '--netns', ns('gw1'), '--netns', String(pid), '--port', '80']);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, new RegExp(`TCPLENS_ERR_BAD_FLAG: --netns ${ns('gw1')} and --netns ${pid} are the same namespace`));
  const gone = await runTcplens(['http', '--netns', '/proc/999999999/ns/net', '--port', '80']);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, /TCPLENS_ERR_NO_NETNS/);
});

test('a --skew that does not parse: TCPLENS_ERR_BAD_FLAG, exit 2, no lab built', { timeout: 60000 }, async () => {
  const other = `${gl.state.name}s`;
  for (const skew of ['gw1=1,2', 'lb=7O,30', 'gw3=1,1,1,1', 'lb=0,0', 'pod1=1,1']) {
    const r = await runTcplens(['lab', 'up', '--name', other, '--gateways', '2', '--pods', '4', '--skew', skew]);
    assert.equal(r.code, 2, `${skew}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`TCPLENS_ERR_BAD_FLAG: --skew ${skew}: expected lb=W1,...,W2 .* or gwK=W1,...,W4 .*\\n {2}hint: e\\.g\\. --skew lb=70,30`), skew);
    noStack(r.stderr);
    assert.deepEqual(leftovers(other), [], `${skew}: nothing of a lab was made`);
  }
});

test('a probe to a lab address with no listener: one TCPLENS_ERR_REFUSED row per request, exit 1', { timeout: 60000 }, async () => {
  const gw1 = gl.state.topology.servers.find((s) => s.node === 'gw1')!.ip4;
  const r = await runTcplens(['probe', `http://${gw1}:81/`, '--count', '3', '--timeout', '2s', '--json'], { netns: ns('client1') });
  assert.equal(r.code, 1, r.stderr);
  const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const summary = rows.pop()!.summary as Record<string, unknown>;
  assert.deepEqual(rows.map((x) => [x.status, x.error]), [[null, 'TCPLENS_ERR_REFUSED'], [null, 'TCPLENS_ERR_REFUSED'], [null, 'TCPLENS_ERR_REFUSED']]);
  assert.deepEqual([summary.sent, summary.answered, summary.errors], [3, 0, 3]);
});

test('a lab node deleted while captured: let go at once (its devices disappear), the others go on, its exchanges and the summary printed, exit 1', { timeout: 120000 }, async () => {
  const cap = await startTcplens(['http', '--netns', ns('gw1'), '--netns', ns('gw2'), '--netns', ns('node2'),
    '--port', '80', '--port', String(POD_PORT), '--json', '--block-timeout', '5ms']);
  let code: number | null = null;
  try {
    load(8, '/before');
    // node2 holds pod2 and pod4: with round robin at both tiers, some of the 8 went there.
    await cap.stdout.wait(new RegExp(`"netns":\\{"name":"${ns('node2')}"`), 10000);
    await sleep(200);
    execFileSync('ip', ['netns', 'del', ns('node2')]);
    await cap.stderr.wait(/TCPLENS_ERR_NETNS_GONE/, 5000);
    // Nothing holds it now: the kernel takes the namespace and its veths away (their lb ends too).
    for (let i = 0; i < 100 && hasLink(ns('lb'), 'n2'); i++) await sleep(50);
    assert.equal(hasLink(ns('lb'), 'n2'), false, 'node2\'s fabric link is gone: tcplens let its namespace go');
    // The gateways are still captured: requests to node1's pods are answered and seen.
    const r = await runTcplens(['probe', `http://${gl.state.topology.vip4}/after`, '--count', '8', '--concurrency', '8', '--timeout', '2s', '--json'], { netns: ns('client1') });
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const run = (rows.pop()!.summary as { run: string }).run;
    const answered = rows.filter((x) => x.status === 200);
    assert.ok(answered.length > 0 && answered.every((x) => x.server === 'pod1' || x.server === 'pod3'), JSON.stringify(rows));
    assert.equal(r.code, 1, 'the requests for node2\'s pods fail');
    await cap.stdout.wait(new RegExp(`"probe":"${run}-`), 10000);
  } finally {
    code = (await cap.stop()).code;
  }
  assert.equal(code, 1, cap.stderr.all.join('\n'));
  const err = cap.stderr.all.join('\n');
  assert.match(err, new RegExp(`TCPLENS_ERR_NETNS_GONE: network namespace ${ns('node2')} \\(inode \\d+\\) went away during the capture: [1-9]\\d* exchanges were seen there\\n {2}hint: the capture goes on in the other 2`));
  noStack(err);
  const seen = cap.stdout.all.map((l) => JSON.parse(l) as { path: string; probe: string | null; netns: { name: string } });
  assert.ok(seen.some((e) => e.netns.name === ns('node2') && e.path.startsWith('/before')), 'what node2 showed before it went is printed');
  assert.ok(seen.some((e) => e.netns.name === ns('gw1') && e.path === '/after'), 'gw1 is still captured after node2 went');
  assert.ok(err.includes('tcplens http: summary'), err);
});

test('the only namespace captured goes away: the capture ends by itself, exit 1, summary printed', { timeout: 60000 }, async () => {
  const cap = await startTcplens(['http', '--netns', ns('pod2'), '--port', String(POD_PORT), '--json']);
  execFileSync('ip', ['netns', 'del', ns('pod2')]);
  const exited = cap.proc.exitCode === null ? once(cap.proc, 'exit') : Promise.resolve([cap.proc.exitCode]);
  const timer = setTimeout(() => cap.proc.kill('SIGKILL'), 10000);
  const [code] = await exited;
  clearTimeout(timer);
  const { stderr } = await cap.stop();
  assert.equal(code, 1, stderr.join('\n'));
  const err = stderr.join('\n');
  assert.match(err, /TCPLENS_ERR_NETNS_GONE: .* went away during the capture: 0 exchanges were seen there\n {2}hint: nothing is left to capture; the capture ends/);
  assert.match(err, /tcplens http: summary packets=0 /);
  noStack(err);
});

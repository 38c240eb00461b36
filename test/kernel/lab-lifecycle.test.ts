// `tcplens lab` as a user drives it (the CLI, in child processes): up/down twice, a failure half
// way through up, two labs side by side, leftovers, and bad input. Each must say clearly what
// happened and leave nothing behind.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { cliForAnyone } from './helpers/tcplens-cli.js';
import { labDown, leftovers } from '../../src/lab/lab.js';
import { labCgroup, pinDir } from '../../src/lab/state.js';
import { CLIENT_SCRIPT } from '../../src/lab/demo.js';
import { listNetns } from '../../src/lab/netns.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const names: string[] = [];
const labName = (tag: string) => { const n = `${tag}${process.pid}`; names.push(n); return n; };

function cli(args: string[], env: NodeJS.ProcessEnv = process.env, user?: number, cliFile = CLI): { code: number; out: string; err: string } {
  const argv = user === undefined ? [process.execPath, cliFile, ...args] : ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--clear-groups', process.execPath, cliFile, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env, timeout: 60000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function assertGone(name: string): void {
  assert.deepEqual(leftovers(name), [], `lab ${name} left something behind`);
  assert.ok(!listNetns().some((n) => n.startsWith(`tl-${name}-`)));
  assert.ok(!existsSync(labCgroup(name)) && !existsSync(pinDir(name)));
}

function status(name: string): { vip: string[]; nodes: { node: string; present: boolean; server?: { running: boolean } }[] } {
  const r = cli(['lab', 'status', '--name', name, '--json']);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out);
}

function request(name: string, client = 'client1'): { server: string; peer: string } {
  const vip = status(name).vip[0].replace(/:80$/, '');
  const out = execFileSync('ip', ['netns', 'exec', `tl-${name}-${client}`, process.execPath, CLIENT_SCRIPT, vip, '80', '1'],
    { encoding: 'utf8' }).trim();
  return JSON.parse(out);
}

after(async () => {
  for (const n of names) await labDown(n).catch(() => {});
});

test('up twice: the second says the name is taken and the first lab is untouched; down twice is fine', () => {
  const name = labName('u');
  const first = cli(['lab', 'up', '--name', name, '--clients', '1', '--servers', '1']);
  assert.equal(first.code, 0, first.err);
  assert.match(first.out, new RegExp(`lab '${name}': up`));
  const again = cli(['lab', 'up', '--name', name, '--clients', '2']);
  assert.equal(again.code, 2);
  assert.match(again.err, /TCPLENS_ERR_LAB: a lab named '.*' is already up/);
  assert.match(again.err, /hint: /);
  const st = status(name);
  assert.equal(st.nodes.length, 3);
  assert.ok(st.nodes.every((n) => n.present) && st.nodes.find((n) => n.node === 'server1')!.server!.running);
  assert.equal(request(name).server, 'server1');

  const down = cli(['lab', 'down', '--name', name]);
  assert.equal(down.code, 0, down.err);
  assert.match(down.err, /removed/);
  assertGone(name);
  const down2 = cli(['lab', 'down', '--name', name]);
  assert.equal(down2.code, 0, down2.err);
  assert.match(down2.err, /no lab named '.*' is up: nothing to remove/);
  const st2 = cli(['lab', 'status', '--name', name]);
  assert.equal(st2.code, 2);
  assert.match(st2.err, /TCPLENS_ERR_LAB: no lab named/);
});

test('a failure at any step of up removes everything up made', () => {
  const name = labName('f');
  for (const step of ['namespaces', 'links', 'addresses', 'nft', 'tc', 'servers']) {
    const r = cli(['lab', 'up', '--name', name, '--clients', '2', '--servers', '2', '--hops', '1', '-6'],
      { ...process.env, TCPLENS_LAB_FAILPOINT: step });
    assert.equal(r.code, 2, `${step}: ${r.err}`);
    assert.match(r.err, new RegExp(`TCPLENS_ERR_LAB: lab up failed: failing on purpose at step '${step}'`));
    assert.match(r.err, /everything the lab made has been removed/, r.err);
    assert.doesNotMatch(r.err, /at .*\.js:\d+/, 'no stack trace');
    assertGone(name);
  }
});

test('leftovers of a lab killed half way block up, and down clears them from their names alone', () => {
  const name = labName('l');
  execFileSync('ip', ['netns', 'add', `tl-${name}-client1`]);
  mkdirSync(join(labCgroup(name), 'server-1'), { recursive: true });
  const r = cli(['lab', 'up', '--name', name]);
  assert.equal(r.code, 2);
  assert.match(r.err, /TCPLENS_ERR_LAB: lab '.*' left things behind: netns tl-.*-client1, cgroup /);
  assert.match(r.err, /tcplens lab down --name/);
  const down = cli(['lab', 'down', '--name', name]);
  assert.equal(down.code, 0, down.err);
  assertGone(name);
});

test('two labs with different names live side by side, and taking one down leaves the other', () => {
  const [a, b] = [labName('a'), labName('b')];
  for (const n of [a, b]) assert.equal(cli(['lab', 'up', '--name', n, '--clients', '1', '--servers', '2']).code, 0);
  assert.notEqual(status(a).vip[0], status(b).vip[0], 'each lab has its own address block');
  assert.match(request(a).peer, /^10\.\d+\.0\.1:/);
  assert.match(request(b).peer, /^10\.\d+\.0\.1:/);
  assert.equal(cli(['lab', 'down', '--name', a]).code, 0);
  assertGone(a);
  assert.ok(status(b).nodes.every((n) => n.present));
  assert.equal(request(b).server.startsWith('server'), true);
  assert.equal(cli(['lab', 'down', '--name', b]).code, 0);
  assertGone(b);
});

test('exec runs a command inside a node and returns its exit code; an unknown node is an error', () => {
  const name = labName('e');
  assert.equal(cli(['lab', 'up', '--name', name, '--clients', '1', '--servers', '1']).code, 0);
  const r = cli(['lab', 'exec', '--name', name, 'client1', '--', 'ip', '-4', '-br', 'addr', 'show', 'eth0']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /eth0(@\S+)?\s+UP\s+10\.\d+\.1\.2\/30/);
  assert.equal(cli(['lab', 'exec', '--name', name, 'lb', '--', 'sh', '-c', 'exit 3']).code, 3);
  const bad = cli(['lab', 'exec', '--name', name, 'client9', '--', 'true']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /TCPLENS_ERR_LAB: lab .* has no node 'client9'/);
  assert.match(bad.err, /nodes: lb, client1, server1/);
  const noCmd = cli(['lab', 'exec', '--name', name, 'client1']);
  assert.match(noCmd.err, /TCPLENS_ERR_BAD_FLAG/);
  assert.equal(cli(['lab', 'down', '--name', name]).code, 0);
  assertGone(name);
});

test('bad input: a clear code and hint, never a stack trace, and nothing built', () => {
  const name = labName('x');
  const cases: [string[], RegExp][] = [
    [['lab', 'up', '--name', name, '--clients', '0'], /TCPLENS_ERR_BAD_FLAG: --clients 0/],
    [['lab', 'up', '--name', name, '--clients', '99'], /TCPLENS_ERR_BAD_FLAG: --clients 99/],
    [['lab', 'up', '--name', name, '--servers', 'two'], /TCPLENS_ERR_BAD_FLAG: --servers two/],
    [['lab', 'up', '--name', name, '--clients', '3', '--hops', '1,2'], /TCPLENS_ERR_BAD_FLAG: --hops lists 2 clients/],
    [['lab', 'up', '--name', name, '--toa', '254/12'], /TCPLENS_ERR_BAD_TOA: --toa 254\/12/],
    [['lab', 'up', '--name', 'No/Good'], /TCPLENS_ERR_BAD_FLAG: --name "No\/Good"/],
    [['lab', 'up', '--name', name, '--bogus'], /TCPLENS_ERR_UNKNOWN_FLAG/],
    [['lab', 'sideways'], /TCPLENS_ERR_BAD_FLAG: lab: unknown subcommand 'sideways'/],
    [['lab', 'up', '--name', name, 'extra'], /TCPLENS_ERR_BAD_FLAG: lab up: unexpected 'extra'/],
  ];
  for (const [args, want] of cases) {
    const r = cli(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, want);
    assert.match(r.err, /hint: /);
    assert.doesNotMatch(r.err, /TCPLENS_ERR_INTERNAL|at .*\.js:\d+/);
  }
  // Not root.
  const anyone = cliForAnyone();
  try {
    const nobody = cli(['lab', 'up', '--name', name], process.env, 65534, anyone.cli);
    assert.equal(nobody.code, 2, nobody.err);
    assert.match(nobody.err, /TCPLENS_ERR_NOT_ROOT/);
  } finally {
    anyone.dispose();
  }
  // nft missing: a PATH with ip but no nft.
  const bin = mkdtempSync(join(tmpdir(), 'tcplens-path-'));
  try {
    symlinkSync(execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim(), join(bin, 'ip'));
    const r = cli(['lab', 'up', '--name', name], { ...process.env, PATH: bin });
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /TCPLENS_ERR_MISSING_TOOL: 'nft' is not installed/);
    assert.match(r.err, /apt-get install nftables/);
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
  assertGone(name);
});

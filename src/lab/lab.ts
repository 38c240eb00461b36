// `tcplens lab up/down`: build the FULLNAT testbed from a plan, and take it all away again.
// Up either finishes or removes what it made, also when it is interrupted (SIGINT, SIGTERM): its
// teardown is registered with onCleanup before the first thing is made, and every step ends at a
// checkpoint. Down works from names alone, so it also clears the leftovers of an `up` that was
// killed outright (SIGKILL).
import { accessSync, constants, existsSync, rmSync, unlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TcplensError } from '../errors.js';
import { cgroup2Mount } from '../kernel/cgroup.js';
import { onCleanup } from '../lifecycle.js';
import { checkpoint, throwIfStopped } from './checkpoint.js';
import { deleteNetns, listNetns, run, runIn, sysctl, txChecksumOff, withNetns } from './netns.js';
import { nftRuleset } from './nft.js';
import { PROXY_SCRIPT, removeCgroupTree, startServer, SERVER_SCRIPT } from './servers.js';
import { attachIpip, IPIP_OBJECT } from './ipip.js';
import { POD_PORT } from './gateway-tier.js';
import {
  freeIndex, labCgroup, pinDir, readState, runDir, serverCgroup, statePath, writeState, type LabState, type ServerProcess,
} from './state.js';
import { attachToaInserter, removePins, TOA_OBJECT } from './toa-inserter.js';
import { ipBatch, labNetnsPattern, planLab, validateName, type LabOptions } from './topology.js';

export type LabRequest = Omit<LabOptions, 'index'>;

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).filter(Boolean).some((d) => {
    try {
      accessSync(join(d, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Root, the tools and the built pieces: checked before anything is made. */
export function preflight(tools: string[] = ['ip', 'nft']): void {
  if (process.getuid?.() !== 0) {
    throw new TcplensError('TCPLENS_ERR_NOT_ROOT', 'the lab creates network namespaces, cgroups and BPF programs: it needs root',
      'run it as root, e.g. sudo tcplens lab ...');
  }
  for (const t of tools) {
    if (!onPath(t)) {
      const pkg: Record<string, string> = { ip: 'iproute2', nft: 'nftables', tcpdump: 'tcpdump', nstat: 'iproute2' };
      throw new TcplensError('TCPLENS_ERR_MISSING_TOOL', `'${t}' is not installed (or not on PATH)`,
        `install it: apt-get install ${pkg[t] ?? t}`);
    }
  }
  cgroup2Mount();
  for (const f of [TOA_OBJECT, SERVER_SCRIPT, PROXY_SCRIPT, IPIP_OBJECT]) {
    if (!existsSync(f)) {
      throw new TcplensError('TCPLENS_ERR_NOT_BUILT', `${f} does not exist`, 'build tcplens first: make -s && npx tsc -p .');
    }
  }
}

/** What exists of lab `name` right now (namespaces, cgroups, pins, state). */
export function leftovers(name: string): string[] {
  const pattern = labNetnsPattern(name);
  const found = listNetns().filter((n) => pattern.test(n)).map((n) => `netns ${n}`);
  if (existsSync(labCgroup(name))) found.push(`cgroup ${labCgroup(name)}`);
  if (existsSync(pinDir(name))) found.push(`pins ${pinDir(name)}`);
  if (existsSync(statePath(name))) found.push(`state ${statePath(name)}`);
  return found;
}

/** A test-only way to fail at a named step (TCPLENS_LAB_FAILPOINT=step), to prove up cleans up. */
function failpoint(step: string): void {
  if (process.env.TCPLENS_LAB_FAILPOINT === step) {
    throw new TcplensError('TCPLENS_ERR_LAB', `failing on purpose at step '${step}' (TCPLENS_LAB_FAILPOINT)`, 'unset TCPLENS_LAB_FAILPOINT');
  }
}

/** A lab that is up, whose teardown still runs at exit until release() (the caller owns it then). */
export interface BuiltLab { state: LabState; release(): void }

/** Build and keep: the lab stays once this returns. */
export async function labUp(req: LabRequest, log: (line: string) => void = () => {}): Promise<LabState> {
  const lab = await buildLab(req, log);
  lab.release();
  return lab.state;
}

/**
 * Build a lab whose teardown stays registered with onCleanup: if the process is stopped before
 * the caller calls release(), the lab goes. `lab up` releases once it has said the lab is up; the
 * demo releases after it has taken the lab down itself.
 */
export async function buildLab(req: LabRequest, log: (line: string) => void = () => {}): Promise<BuiltLab> {
  validateName(req.name);
  preflight();
  const existing = leftovers(req.name);
  if (existing.length) {
    const up = readState(req.name)?.phase === 'up';
    throw new TcplensError('TCPLENS_ERR_LAB',
      up ? `a lab named '${req.name}' is already up` : `lab '${req.name}' left things behind: ${existing.join(', ')}`,
      up ? `use it (tcplens lab status --name ${req.name}), take it down first, or pick another --name`
        : `remove them with: tcplens lab down --name ${req.name}`);
  }
  throwIfStopped('before the lab was built');
  const topology = planLab({ ...req, index: freeIndex() });
  const state: LabState = {
    name: req.name, phase: 'building', createdAt: new Date().toISOString(), topology,
    cgroup: labCgroup(req.name), pinDir: pinDir(req.name), servers: [], tc: [],
  };
  const release = onCleanup(`lab ${req.name}`, async () => {
    const left = await teardown(req.name);
    if (left.length) process.stderr.write(`tcplens lab: could not remove ${left.join(', ')}; try: tcplens lab down --name ${req.name}\n`);
  });
  try {
    // Written first: if this process dies half way, `down` still knows what the lab is.
    writeState(state);
    await build(state, log);
  } catch (e) {
    const left = await teardown(req.name);
    release();
    const err = e instanceof TcplensError ? e : new TcplensError('TCPLENS_ERR_LAB', (e as Error).message, 'run with --verbose');
    if (err.code === 'TCPLENS_ERR_INTERRUPTED') {
      throw new TcplensError(err.code, `lab up ${err.message}`,
        left.length ? `these could not be removed: ${left.join(', ')}` : 'everything the lab made has been removed');
    }
    throw new TcplensError(err.code, `lab up failed: ${err.message}`,
      left.length ? `these could not be removed: ${left.join(', ')}` : `${err.hint} (everything the lab made has been removed)`, err.detail);
  }
  return { state, release };
}

async function build(state: LabState, log: (line: string) => void): Promise<void> {
  const t = state.topology;
  const byName = new Map(t.nodes.map((n) => [n.name, n]));

  log(`namespaces: ${t.nodes.length}`);
  run('ip', ['-batch', '-'], t.nodes.map((n) => `netns add ${n.netns}\n`).join(''));
  failpoint('namespaces');
  await checkpoint('while creating namespaces');
  // Before any device exists: no DAD delay on IPv6, forwarding where packets pass through.
  for (const n of t.nodes) {
    withNetns(n.netns, () => {
      sysctl('net.ipv6.conf.default.accept_dad', '0');
      sysctl('net.ipv6.conf.all.accept_dad', '0');
      if (n.forwarding) {
        sysctl('net.ipv4.ip_forward', '1');
        sysctl('net.ipv6.conf.all.forwarding', '1');
      }
    });
  }

  log(`links: ${t.links.length}`);
  // Each end is created right in its namespace, so the host's device names never matter.
  run('ip', ['-batch', '-'], t.links.map((l) =>
    `link add ${l.aDev} netns ${byName.get(l.a)!.netns} type veth peer name ${l.bDev} netns ${byName.get(l.b)!.netns}\n`).join(''));
  failpoint('links');
  await checkpoint('while linking namespaces');
  for (const n of t.nodes) {
    run('ip', ['-n', n.netns, '-batch', '-'], ipBatch(n).map((l) => `${l}\n`).join(''));
    withNetns(n.netns, () => { for (const f of n.ifaces) if (f.dev !== 'lo' && !f.dev.startsWith('br')) txChecksumOff(f.dev); });
  }
  failpoint('addresses');
  await checkpoint('while addressing');

  const lb = byName.get('lb')!;
  log(`nftables: DNAT ${t.gatewayTier && t.options.skew?.lb ? `weighted ${t.options.skew.lb.join(':')}` : 'round robin'} + SNAT`);
  runIn(lb.netns, ['nft', '-f', '-'], nftRuleset(t));
  failpoint('nft');
  await checkpoint('while setting up NAT');

  log(`TOA inserter: TC ingress on ${t.clientFacing.join(', ')}`);
  state.tc = attachToaInserter(lb.netns, t.clientFacing, t.options.toa4, t.options.toa6, state.pinDir);
  writeState(state);
  failpoint('tc');
  await checkpoint('while attaching the TOA inserter');

  const tier = t.gatewayTier;
  if (tier) {
    log(`IPIP: TC on ${tier.gateways.length} gateways' and ${tier.podNodes.length} pod nodes' fabric devices`);
    state.tc.push(...attachIpip(tier, (node) => byName.get(node)!.netns));
    writeState(state);
    await checkpoint('while attaching the IPIP tunnels');
    log(`pods: ${tier.pods.length}`);
    await startAll(state, tier.pods.map((p, i) => () =>
      startServer(p.node, byName.get(p.node)!.netns, join(state.cgroup, `pod-${i + 1}`), POD_PORT, `${runDir(state.name)}/${p.node}.log`)));
  }
  log(`${tier ? 'gateways' : 'servers'}: ${t.servers.length}`);
  await startAll(state, t.servers.map((s, i) => () => {
    const gw = tier?.gateways.find((g) => g.node === s.node);
    return startServer(s.node, byName.get(s.node)!.netns, serverCgroup(state.name, i + 1), t.options.port, `${runDir(state.name)}/${s.node}.log`,
      gw ? PROXY_SCRIPT : SERVER_SCRIPT, gw ? [String(POD_PORT), ...tier!.pods.map((p, j) => `${p.ip}=${gw.weights[j]}`)] : []);
  }));
  failpoint('servers');
  await checkpoint('while starting servers');

  state.phase = 'up';
  writeState(state);
}

/** Start processes side by side; every one that started is in the state (so down finds it), and
 * the first failure is thrown once all have settled. */
async function startAll(state: LabState, starts: (() => Promise<ServerProcess>)[]): Promise<void> {
  const started = await Promise.allSettled(starts.map((s) => s()));
  state.servers.push(...started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])));
  writeState(state);
  const failed = started.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  if (failed) throw failed.reason;
}

/** Remove everything of lab `name`; returns what could not be removed (empty = clean). */
export async function teardown(name: string): Promise<string[]> {
  const left = await removeCgroupTree(labCgroup(name));
  const pattern = labNetnsPattern(name);
  for (const ns of listNetns().filter((n) => pattern.test(n))) deleteNetns(ns);
  try { removePins(pinDir(name)); } catch (e) { left.push(`pins ${pinDir(name)} (${(e as Error).message})`); }
  rmSync(runDir(name), { recursive: true, force: true });
  try { unlinkSync(statePath(name)); } catch { /* not there */ }
  return [...left, ...leftovers(name)];
}

/** Returns false when there was no such lab (down is idempotent: that is not an error). */
export async function labDown(name: string): Promise<boolean> {
  validateName(name);
  preflight(['ip']);
  if (!leftovers(name).length) return false;
  const left = await teardown(name);
  if (left.length) {
    throw new TcplensError('TCPLENS_ERR_LAB', `lab '${name}' could not be removed completely: ${left.join(', ')}`,
      'something else may be using them (a shell inside a lab namespace?); stop it and run lab down again');
  }
  return true;
}

// `tcplens lab demo`: the first thing a new user runs. Bring a lab up, watch its servers with
// `tcplens accept`, send requests from every client, and print side by side what the server's
// socket saw (the balancer) and what tcplens reports (the real client, from the TOA option).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { TcplensError } from '../errors.js';
import { repoRoot } from '../kernel/paths.js';
import { labDown, labUp, type LabRequest } from './lab.js';
import type { LabState } from './state.js';

const run = promisify(execFile);

/** Resolves after ms without keeping the process alive (a race's losing timer must not). */
function deadline<T>(ms: number, value: T): Promise<T> {
  return new Promise((res) => setTimeout(() => res(value), ms).unref());
}
export const CLIENT_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'http-client.js');
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** One request as both ends saw it, and what tcplens said about its connection. */
export interface DemoRow {
  client: string;     // node name
  hops: number;
  own: string;        // the client socket's own address:port
  server: string;     // which server answered
  serverPeer: string; // what the server's socket saw as its peer
  serverLocal: string;
  tcplens: string | null; // the client address tcplens accept reported
  toa: string | null;     // kind/len of the TOA it read
}

export interface AcceptLine { local: string; peer: string; client: string | null; toa: { kind: number; len: number } | null }

/** `tcplens accept --json` on the lab's cgroup (all its servers); resolves once it is attached. */
export async function startAccept(state: LabState): Promise<{ events: AcceptLine[]; stop(): Promise<string> }> {
  const t = state.topology;
  const args = [CLI, 'accept', '--json', '--cgroup', state.cgroup, '--merge-window', '0', '-p', String(t.options.port),
    '--trusted-lb', t.lbAddr4, ...(t.lbAddr6 ? ['--trusted-lb', t.lbAddr6] : [])];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: AcceptLine[] = [];
  let stderr = '';
  createInterface({ input: child.stdout! }).on('line', (l) => { try { events.push(JSON.parse(l)); } catch { /* not an event */ } });
  const exited = new Promise<number>((res) => child.on('exit', (code) => res(code ?? -1)));
  const attached = new Promise<void>((res) => createInterface({ input: child.stderr! }).on('line', (l) => {
    stderr += `${l}\n`;
    if (l.startsWith('tcplens: attached')) res();
  }));
  const r = await Promise.race([attached.then(() => 'ok'), exited.then(() => 'exit'), deadline(20000, 'timeout')]);
  if (r !== 'ok') {
    child.kill('SIGKILL');
    throw new TcplensError('TCPLENS_ERR_LAB', `tcplens accept did not start (${r}): ${stderr.trim().split('\n').slice(-3).join('; ')}`,
      `try it alone: tcplens accept --cgroup ${state.cgroup}`);
  }
  return {
    events,
    stop: async () => {
      child.kill('SIGINT');
      if ((await Promise.race([exited, deadline(5000, 'late' as const)])) === 'late') child.kill('SIGKILL');
      return stderr;
    },
  };
}

/** Every client sends one request per server (so round robin shows), over IPv4 and, if up, IPv6. */
export async function sendFromClients(state: LabState): Promise<Omit<DemoRow, 'tcplens' | 'toa'>[]> {
  const t = state.topology;
  const rows: Omit<DemoRow, 'tcplens' | 'toa'>[] = [];
  for (const c of t.clients) {
    const ns = t.nodes.find((n) => n.name === c.node)!.netns;
    for (const vip of [t.vip4, ...(t.vip6 ? [t.vip6] : [])]) {
      const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, CLIENT_SCRIPT, vip, String(t.options.port),
        String(t.servers.length)]).catch((e) => ({ stdout: String(e.stdout ?? '') }));
      for (const line of stdout.split('\n').filter(Boolean)) {
        const a = JSON.parse(line) as { client?: string; server?: string; peer?: string; local?: string; error?: string };
        if (a.error) throw new TcplensError('TCPLENS_ERR_LAB', `${c.node} -> ${vip}: ${a.error}`, 'see tcplens lab status');
        rows.push({ client: c.node, hops: c.hops, own: a.client!, server: a.server!, serverPeer: a.peer!, serverLocal: a.local! });
      }
    }
  }
  return rows;
}

export function joinAccept(rows: Omit<DemoRow, 'tcplens' | 'toa'>[], events: AcceptLine[]): DemoRow[] {
  return rows.map((r) => {
    const ev = events.find((e) => e.local === r.serverLocal && e.peer === r.serverPeer);
    return { ...r, tcplens: ev?.client ?? null, toa: ev?.toa ? `${ev.toa.kind}/${ev.toa.len}` : null };
  });
}

export function formatDemo(state: LabState, rows: DemoRow[], acceptNote: string | null): string {
  const t = state.topology;
  const head = ['client', 'hops', 'its own address', 'server', "the server's socket sees", 'tcplens accept reports', ''];
  const body = rows.map((r) => [r.client, String(r.hops), r.own, r.server,
    `${r.serverPeer}${r.serverPeer.startsWith(`${t.lbAddr4}:`) || (t.lbAddr6 && r.serverPeer.startsWith(`[${t.lbAddr6}]:`)) ? ' (balancer)' : ''}`,
    r.tcplens ? `${r.tcplens} (TOA ${r.toa})` : '-', r.tcplens === r.own ? 'real client' : 'MISMATCH']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const fmt = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(w[i])).join('  ')}`.trimEnd();
  const ok = rows.filter((r) => r.tcplens === r.own).length;
  const sawLb = rows.filter((r) => r.serverPeer !== r.own).length;
  return [
    '',
    `tcplens lab demo: ${t.clients.length} clients -> VIP ${t.vip4}:${t.options.port}${t.vip6 ? ` and [${t.vip6}]:${t.options.port}` : ''}` +
      ` -> balancer (FULLNAT: DNAT round robin + SNAT to ${t.lbAddr4}, TOA ${t.options.toa4.kind}/${t.options.toa4.len}` +
      `${t.vip6 ? `, ${t.options.toa6.kind}/${t.options.toa6.len}` : ''}) -> ${t.servers.length} servers`,
    '',
    fmt(head),
    ...body.map(fmt),
    '',
    `  ${sawLb} of ${rows.length} server sockets saw the balancer instead of the client; ` +
      `tcplens accept reported the real client of ${ok} of ${rows.length} connections (from the TOA option).`,
    ...(acceptNote ? [`  ${acceptNote}`] : []),
    '',
  ].join('\n');
}

export async function runDemo(req: LabRequest, opts: { keep: boolean; log: (line: string) => void }): Promise<number> {
  const t0 = performance.now();
  const state = await labUp(req, opts.log);
  opts.log(`lab ${req.name} up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    let accept: Awaited<ReturnType<typeof startAccept>> | null = null;
    let note: string | null = null;
    try {
      accept = await startAccept(state);
    } catch (e) {
      note = `tcplens accept could not run: ${(e as Error).message}`;
    }
    const sent = await sendFromClients(state);
    let rows = joinAccept(sent, accept?.events ?? []);
    // Events trail the handshake by microseconds, but the reader drains on a timer: give it a moment.
    for (let waited = 0; accept && rows.some((r) => !r.tcplens) && waited < 3000; waited += 50) {
      await sleep(50);
      rows = joinAccept(sent, accept.events);
    }
    await accept?.stop();
    process.stdout.write(formatDemo(state, rows, note));
    if (opts.keep) {
      process.stdout.write([
        `  The lab stays up (--keep). Look around:`,
        `    tcplens lab status --name ${req.name}`,
        `    tcplens accept --cgroup ${state.cgroup}`,
        `    tcplens lab exec --name ${req.name} client1 -- curl -s http://${state.topology.vip4}/`,
        `    tcplens lab down --name ${req.name}`, '', ''].join('\n'));
    }
    return rows.length && rows.every((r) => r.tcplens === r.own) ? 0 : 1;
  } finally {
    if (!opts.keep) {
      await labDown(req.name);
      opts.log(`lab ${req.name} removed`);
    }
  }
}

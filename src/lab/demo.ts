// `tcplens lab demo`: the first thing a new user runs. Bring a lab up, watch its servers with the
// accept tracer (in this process), send requests from every client, and print side by side what
// the server's socket saw (the balancer) and what tcplens reports (the real client, from the TOA
// option). Interrupted at any moment, it removes the tracer and the lab (both are registered
// with onCleanup while they exist).
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { TcplensError } from '../errors.js';
import { onCleanup, stopSignal } from '../lifecycle.js';
import { AcceptTracer, DEFAULT_MERGE_CAPACITY, type AcceptOptions, type AcceptRecord } from '../capabilities/accept/accept.js';
import { parseCidr } from '../net/addr.js';
import { dialectTable } from '../net/toa.js';
import { checkpoint, interrupted, throwIfStopped } from './checkpoint.js';
import { buildLab, labDown, type LabRequest } from './lab.js';
import type { LabState } from './state.js';
import { formatHops, probeVipHops, type HopRow } from './demo-hops.js';
import { formatHttp, startHttpCapture, type DemoHttp } from './demo-http.js';
import { BRIEF_TIER, demoBalance } from './demo-balance.js';
import { demoAccel } from './demo-accel.js';
import type { HttpExchange } from '../net/http1.js';
import type { SeenExchange } from '../capabilities/http/balance-summary.js';

const run = promisify(execFile);

export const CLIENT_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'http-client.js');

/** One request as both ends saw it, and what tcplens said about its connection. */
export interface DemoRow {
  client: string;     // node name
  hops: number;       // routers between it and the balancer
  family: 4 | 6;
  own: string;        // the client socket's own address:port
  server: string;     // which server answered
  serverPeer: string; // what the server's socket saw as its peer
  serverLocal: string;
  tcplens: string | null; // the client address tcplens accept reported
  toa: string | null;     // kind/len of the TOA it read
  acceptHops: number | null; // the hop distance tcplens accept saw for the connection
}

/**
 * What the demo's tracer watches: every server of the lab, the balancer trusted, the lab's own
 * dialects with the defaults. The one place the demo builds AcceptOptions.
 */
export function demoAcceptOptions(state: LabState): AcceptOptions {
  const t = state.topology;
  return {
    cgroup: state.cgroup,
    ports: [t.options.port],
    family: 0,
    mergeWindowNs: 0n, // one row per connection: the table joins them one by one
    mergeCapacity: DEFAULT_MERGE_CAPACITY,
    trusted: [t.lbAddr4, ...(t.lbAddr6 ? [t.lbAddr6] : [])].map(parseCidr),
    dialects: dialectTable([t.options.toa4, t.options.toa6].map((d) => `${d.kind}/${d.len}`)),
    // The servers listen before the tracer attaches, so the handshake ACK is where the TOA is read.
    saveSyn: false,
    // The lab's balancer writes its TOA first, as LVS does; a client's own would still be flagged.
    toaConflict: 'reject',
    readToaKo: false,
  };
}

/** The accept tracer on the lab's servers, stopped at exit if the demo does not get to stop it. */
function startTracer(state: LabState): { events: AcceptRecord[]; stop(): Promise<void> } {
  const events: AcceptRecord[] = [];
  const tracer = AcceptTracer.start(demoAcceptOptions(state), (r) => events.push(r));
  const stop = () => tracer.stop().then(() => release());
  const release = onCleanup("the demo's accept tracer", stop);
  return { events, stop };
}

/** Every client sends one request per server (so round robin shows), over IPv4 and, if up, IPv6. */
export async function sendFromClients(state: LabState): Promise<Omit<DemoRow, 'tcplens' | 'toa' | 'acceptHops'>[]> {
  const t = state.topology;
  const rows: Omit<DemoRow, 'tcplens' | 'toa' | 'acceptHops'>[] = [];
  for (const c of t.clients) {
    const ns = t.nodes.find((n) => n.name === c.node)!.netns;
    for (const vip of [t.vip4, ...(t.vip6 ? [t.vip6] : [])]) {
      const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, CLIENT_SCRIPT, vip, String(t.options.port),
        String(t.servers.length)], { signal: stopSignal }).catch((e) => {
        if (stopSignal.aborted) throw interrupted(`while ${c.node} sent requests`);
        return { stdout: String(e.stdout ?? '') };
      });
      for (const line of stdout.split('\n').filter(Boolean)) {
        const a = JSON.parse(line) as { client?: string; server?: string; peer?: string; local?: string; error?: string };
        if (a.error) throw new TcplensError('TCPLENS_ERR_LAB', `${c.node} -> ${vip}: ${a.error}`, 'see tcplens lab status');
        rows.push({ client: c.node, hops: c.hops, family: vip === t.vip4 ? 4 : 6, own: a.client!, server: a.server!, serverPeer: a.peer!, serverLocal: a.local! });
      }
    }
  }
  return rows;
}

export function joinAccept(rows: Omit<DemoRow, 'tcplens' | 'toa' | 'acceptHops'>[], events: AcceptRecord[]): DemoRow[] {
  return rows.map((r) => {
    const ev = events.find((e) => e.local === r.serverLocal && e.peer === r.serverPeer);
    return { ...r, tcplens: ev?.client ?? null, toa: ev?.toa ? `${ev.toa.kind}/${ev.toa.len}` : null, acceptHops: ev?.hops ?? null };
  });
}

export function formatDemo(state: LabState, rows: DemoRow[], acceptNote: string | null, hops: HopRow[] = [], http: string[] = []): string {
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
    ...(http.length ? ['', ...http] : []),
    ...(hops.length ? ['', ...formatHops(hops)] : []),
    '',
  ].join('\n');
}

/**
 * Where the demo hands on what its capabilities recorded (lab demo --collector ships them): the
 * FULLNAT lab's accept and http records, and apart from them what the gateways of the gateway
 * section saw (another agent's: its balance is a question of its own).
 */
export interface DemoShip { accept(r: AcceptRecord): void; http(e: HttpExchange): void; gatewayHttp(e: SeenExchange): void }

/**
 * The demo's last, brief section: which layer balances badly, in a second small lab (one client,
 * 2 gateways, 4 pods over IPIP, gw1 skewed on purpose), always removed again (--keep keeps only
 * the FULLNAT lab). `tcplens lab demo --gateways N ...` shows the whole summary instead.
 */
async function gatewayBrief(req: LabRequest, log: (line: string) => void, ship?: DemoShip): Promise<string> {
  const gwReq: LabRequest = { ...req, name: `${req.name.slice(0, 13)}-gw`, clients: 1, hops: [0], ipv6: false, ...BRIEF_TIER, servers: BRIEF_TIER.gateways };
  const lab = await buildLab(gwReq, log);
  try {
    return await demoBalance(lab.state, log, { brief: true, ship: ship?.gatewayHttp });
  } finally {
    await labDown(gwReq.name);
    log(`lab ${gwReq.name} removed`);
    lab.release();
  }
}

export async function runDemo(req: LabRequest, opts: { keep: boolean; log: (line: string) => void; ship?: DemoShip }): Promise<number> {
  const t0 = performance.now();
  const lab = await buildLab(req, opts.log);
  const state = lab.state;
  opts.log(`lab ${req.name} up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  let tracer: ReturnType<typeof startTracer> | null = null;
  let releaseHttp: (() => void) | null = null;
  let shown = false;
  try {
    // A gateway tier (--gateways): the demo is which layer balances badly.
    if (state.topology.gatewayTier) {
      process.stdout.write(await demoBalance(state, opts.log, { ship: opts.ship?.gatewayHttp }));
      shown = true;
      return 0;
    }
    let note: string | null = null;
    try {
      tracer = startTracer(state);
      opts.log(`accept tracer: attached to ${state.cgroup}`);
    } catch (e) {
      note = `tcplens accept could not run: ${(e as Error).message}`;
    }
    await checkpoint('after the tracer attached');
    let http: DemoHttp | null = null;
    try {
      http = startHttpCapture(state);
      releaseHttp = onCleanup("the demo's HTTP capture", () => http!.stop().then(() => undefined));
    } catch (e) {
      note = `${note ? `${note}; ` : ''}tcplens http could not run: ${(e as Error).message}`;
    }
    opts.log(`requests: ${state.topology.clients.length} clients`);
    const sent = await sendFromClients(state);
    let rows = joinAccept(sent, tracer?.events ?? []);
    // Events trail the handshake by microseconds, but the reader drains on a timer: give it a moment.
    for (let waited = 0; tracer && rows.some((r) => !r.tcplens) && waited < 3000; waited += 50) {
      await sleep(50);
      throwIfStopped('while waiting for events');
      rows = joinAccept(sent, tracer.events);
    }
    await tracer?.stop();
    // The capture's ring hands blocks over on a 5 ms timeout: let the last exchanges arrive.
    for (let waited = 0; http && http.exchanges.length < sent.length && waited < 2000; waited += 50) await sleep(50);
    const httpDrops = http ? (await http.stop()).drops : 0;
    releaseHttp?.();
    opts.log('hop distance: tcplens hops from every client to the VIP');
    const probed = await probeVipHops(state).catch((e) => { note = `${note ? `${note}; ` : ''}tcplens hops could not run: ${(e as Error).message}`; return []; });
    throwIfStopped('after the hop probes');
    const hops: HopRow[] = probed.map((p) => ({ ...p, accepted: rows.find((r) => r.client === p.client && r.family === p.family)?.acceptHops ?? null }));
    opts.log('accel: a local connection, plain then accelerated');
    const accel = await demoAccel(state, opts.log).catch((e) => {
      if (stopSignal.aborted) throw e;
      return [`  tcplens accel could not run: ${(e as Error).message}`];
    });
    process.stdout.write(formatDemo(state, rows, note, hops, http ? formatHttp(http.exchanges, httpDrops, sent.length) : []));
    process.stdout.write(`${accel.join('\n')}\n`);
    shown = true;
    process.stdout.write(await gatewayBrief(req, opts.log, opts.ship));
    for (const r of tracer?.events ?? []) opts.ship?.accept(r);
    for (const e of http?.exchanges ?? []) opts.ship?.http(e);
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
    await tracer?.stop();
    // --keep keeps a lab whose table was shown; interrupted or failed before that, it goes too.
    if (!(opts.keep && shown)) {
      await labDown(req.name);
      opts.log(`lab ${req.name} removed`);
    }
    lab.release();
  }
}

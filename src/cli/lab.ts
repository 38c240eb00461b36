// tcplens lab up|down|status|exec|demo: an LVS-FULLNAT testbed in network namespaces.
import { spawnSync } from 'node:child_process';
import { formatError, TcplensError } from '../errors.js';
import { stopReason } from '../lifecycle.js';
import { helpText, parseFlags, type FlagTable } from './flags.js';
import { buildLab, labDown, preflight } from '../lab/lab.js';
import { labRequest } from './lab-options.js';
import { formatStatus, labStatus } from '../lab/status.js';
import { listLabs, readState } from '../lab/state.js';
import { validateName } from '../lab/topology.js';
import { runDemo, type DemoShip } from '../lab/demo.js';
import { demoCollectorFlags, demoWithCollector } from './demo-collector.js';

const name = { type: 'string', arg: 'NAME', help: 'which lab (default: lab; demo: demo)' } as const;
const help = { type: 'boolean', short: 'h', help: 'this help' } as const;
const verbose = { type: 'boolean', short: 'v', help: 'full diagnostics on errors' } as const;
const shape = {
  clients: { type: 'string', arg: 'N', help: 'client namespaces, each with its own address (default 3, at most 32)' },
  servers: { type: 'string', arg: 'N', help: 'real servers behind the balancer (default 2, at most 16)' },
  gateways: { type: 'string', arg: 'N', help: 'a gateway tier instead: N HTTP proxies behind the balancer (at most 8), to --pods over IPIP' },
  pods: { type: 'string', arg: 'M', help: 'pods behind the gateways (default 3, at most 32), two a pod node, port 29090' },
  skew: { type: 'string', multiple: true, arg: 'SPEC', help: 'make a tier unfair: lb=70,30 (the balancer over the gateways), gw1=80,10,10 (gateway 1 over the pods)' },
  hops: { type: 'string', arg: 'a,b,...', help: 'routers between each client and the balancer (one count per client, or one for all)' },
  toa: { type: 'string', multiple: true, arg: 'KIND/LEN', help: 'TOA dialect the balancer writes: LEN 8 for IPv4 (default 254/8), 20 for IPv6 (default 253/20)' },
  ipv6: { type: 'boolean', short: '6', help: 'dual-stack: IPv6 addresses and an IPv6 VIP as well' },
} as const;

const tables = {
  up: { name, ...shape, verbose, help },
  down: { name, verbose, help },
  status: { name: { ...name, help: 'which lab (default: every lab that is up)' }, json: { type: 'boolean', help: 'one JSON object' }, verbose, help },
  exec: { name: { ...name, help: 'which lab (default: the only one up)' }, verbose, help },
  demo: { name: { ...name, help: 'lab name for the demo (default: demo)' }, ...shape,
    keep: { type: 'boolean', help: 'leave the lab up afterwards (tcplens lab down --name demo removes it)' }, ...demoCollectorFlags, verbose, help },
} satisfies Record<string, FlagTable>;

const usage: Record<keyof typeof tables, string> = {
  up: 'tcplens lab up [--name NAME] [--clients N] [--servers N | --gateways N --pods M [--skew SPEC]] [--hops a,b,...] [--toa KIND/LEN] [-6]',
  down: 'tcplens lab down [--name NAME]',
  status: 'tcplens lab status [--name NAME] [--json]',
  exec: 'tcplens lab exec [--name NAME] NODE -- CMD [ARGS...]',
  demo: 'tcplens lab demo [--keep] [--clients N] [--servers N | --gateways N --pods M [--skew SPEC]] [--hops a,b,...] [-6] [--collector [--collector-listen HOST:PORT]]',
};

const overview = `usage: tcplens lab <up|down|status|exec|demo> [flags]

An LVS-FULLNAT testbed in network namespaces: clients -> balancer (nftables DNAT round robin +
SNAT, and a TC program that inserts the TOA option with the real client) -> real HTTP servers.

  up      build a lab            ${usage.up}
  down    remove all of it       ${usage.down}
  status  nodes, addresses, processes, TOA counters
  exec    run a command in a node (client1, router1-1, lb, server1, ...)
  demo    up, tcplens accept on the servers, a request from every client, a table, down

Start here: tcplens lab demo
`;

function labName(given: string | undefined, fallback: string): string {
  return validateName(given ?? fallback);
}

export async function run(argv: string[]): Promise<number> {
  try {
    return await runLab(argv);
  } catch (e) {
    // Asked to stop: not a failure of the lab, so the shell's exit code for the signal.
    if (!(e instanceof TcplensError) || e.code !== 'TCPLENS_ERR_INTERRUPTED') throw e;
    process.stderr.write(formatError(e));
    return stopReason() === 'SIGTERM' ? 143 : 130;
  }
}

async function runLab(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(overview);
    return 0;
  }
  if (!(sub in tables)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `lab: unknown subcommand '${sub}'`, 'one of: up, down, status, exec, demo (tcplens lab --help)');
  }
  const which = sub as keyof typeof tables;
  // Everything after `--` is the command for exec, never our flags.
  const dash = rest.indexOf('--');
  const ours = dash >= 0 ? rest.slice(0, dash) : rest;
  const command = dash >= 0 ? rest.slice(dash + 1) : [];
  const f = parseFlags(ours, tables[which] as FlagTable, `lab ${which}`) as Record<string, unknown> & { _: string[] };
  if (f.help) {
    process.stdout.write(helpText(usage[which], tables[which]));
    return 0;
  }
  if (which !== 'exec' && (f._.length || dash >= 0)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `lab ${which}: unexpected '${[...f._, ...command].join(' ')}'`, `usage: ${usage[which]}`);
  }
  const say = (line: string) => process.stderr.write(`tcplens lab: ${line}\n`);

  switch (which) {
    case 'up': {
      const req = labRequest(f as never, { name: 'lab', clients: 3 });
      const t0 = performance.now();
      const lab = await buildLab(req, say);
      process.stdout.write(formatStatus(labStatus(req.name)));
      say(`up in ${((performance.now() - t0) / 1000).toFixed(1)} s; remove it with: tcplens lab down --name ${req.name}`);
      // Said it is up: from here the lab is the user's, an interrupt no longer takes it away.
      lab.release();
      return 0;
    }
    case 'down': {
      const n = labName(f.name as string | undefined, 'lab');
      const t0 = performance.now();
      if (await labDown(n)) say(`lab ${n} removed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      else say(`no lab named '${n}' is up: nothing to remove${listLabs().length ? ` (labs up: ${listLabs().join(', ')})` : ''}`);
      return 0;
    }
    case 'status': {
      preflight([]);
      const names = f.name !== undefined ? [labName(f.name as string, 'lab')] : listLabs();
      const all = names.map(labStatus);
      if (f.json) process.stdout.write(`${JSON.stringify(f.name !== undefined ? all[0] : all)}\n`);
      else process.stdout.write(all.length ? all.map(formatStatus).join('\n') : 'no lab is up (start one: tcplens lab up, or tcplens lab demo)\n');
      return 0;
    }
    case 'exec':
      return exec(f.name as string | undefined, f._, command);
    case 'demo': {
      const req = labRequest(f as never, { name: 'demo', clients: 3, hops: '0,1,2' });
      const demo = (ship?: DemoShip) => runDemo(req, { keep: f.keep as boolean, log: say, ship });
      return f.collector ? demoWithCollector(f['collector-listen'] as string, demo) : demo();
    }
  }
}

function exec(given: string | undefined, positional: string[], command: string[]): number {
  preflight(['ip']);
  const labs = listLabs();
  if (given === undefined && labs.length !== 1) {
    throw new TcplensError('TCPLENS_ERR_LAB', labs.length ? `${labs.length} labs are up: which one?` : 'no lab is up',
      labs.length ? `add --name (one of: ${labs.join(', ')})` : 'bring one up: tcplens lab up');
  }
  const n = labName(given ?? labs[0], 'lab');
  const [node, ...extra] = positional;
  if (!node || extra.length || !command.length) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', 'lab exec: expected NODE -- CMD', `usage: ${usage.exec}, e.g. tcplens lab exec client1 -- curl -s http://VIP/`);
  }
  const s = readState(n);
  if (!s) throw new TcplensError('TCPLENS_ERR_LAB', `no lab named '${n}' is up`, labs.length ? `labs up: ${labs.join(', ')}` : 'bring one up: tcplens lab up');
  const target = s.topology.nodes.find((x) => x.name === node);
  if (!target) {
    throw new TcplensError('TCPLENS_ERR_LAB', `lab ${n} has no node '${node}'`, `nodes: ${s.topology.nodes.map((x) => x.name).join(', ')}`);
  }
  const r = spawnSync('ip', ['netns', 'exec', target.netns, ...command], { stdio: 'inherit' });
  if (r.error) throw new TcplensError('TCPLENS_ERR_LAB', `cannot run ${command[0]} in ${node}: ${r.error.message}`, 'is the lab intact? tcplens lab status');
  return r.status ?? 128 + 1;
}

#!/usr/bin/env node
// tcplens: one file per command under src/cli/; this file only dispatches, prints errors and
// makes sure that whatever ends the process (finish, signal, closed stdout, a stray error) undoes
// what the command set up before it exits.
import { formatError, TcplensError } from '../errors.js';
import { exitAfterCleanup, installProcessHandlers } from '../lifecycle.js';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  accel: { summary: 'sockmap acceleration of local TCP connections of a cgroup (measure with bench/accel)', load: () => import('./accel.js') },
  accept: { summary: 'inbound TCP connections with the real client behind the balancer (TOA)', load: () => import('./accept.js') },
  collector: { summary: 'gathers the events of many agents (DuckDB), answers queries, serves Prometheus metrics', load: () => import('./collector.js') },
  hops: { summary: 'hop distance of TCP peers from the TTL / hop limit of their first reply', load: () => import('./hops.js') },
  http: { summary: 'HTTP/1 exchanges on the wire (also in IPIP, VLANs), live from a socket filter or from pcap', load: () => import('./http.js') },
  lab: { summary: 'an LVS-FULLNAT testbed in network namespaces; `tcplens lab demo` to start', load: () => import('./lab.js') },
  probe: { summary: 'tagged HTTP test requests (X-Tcplens-Probe) for tcplens http to follow hop by hop', load: () => import('./probe.js') },
  toa: { summary: 'give unmodified applications the real client address (toa.ko without a module)', load: () => import('./toa.js') },
};

function usage(): string {
  const rows = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`);
  return `usage: tcplens <command> [flags]\n\ncommands:\n${rows.join('\n')}\n\nRun tcplens <command> --help for its flags.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    throw new TcplensError('TCPLENS_ERR_UNKNOWN_COMMAND', `unknown command '${name}'`, `commands: ${Object.keys(commands).join(', ')}`);
  }
  return (await cmd.load()).run(rest);
}

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v') || process.env.TCPLENS_VERBOSE === '1';
installProcessHandlers({ verbose });
main(process.argv.slice(2)).then(
  (code) => exitAfterCleanup(code),
  (e) => {
    process.stderr.write(formatError(e, verbose));
    return exitAfterCleanup(2);
  },
);

// Live capture: the same HTTP traffic between two namespaces captured at once by `tcplens http`
// (AF_PACKET TPACKET_V3 ring + kernel filter, output to /dev/null) and by `tcpdump -w /dev/null`
// on the same veth, at rising load. Printed per load: requests/s, exchanges tcplens saw, kernel
// drops of both, CPU of both (utime+stime from /proc over the load window) and the ratios.
// Needs root; run under the kernel lock:
//   flock /tmp/tcplens-kernel.lock node dist/bench/http/live-capture.js [seconds=5] [concurrency,...=4,16,64]
import '../stdout-closed.js';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../src/kernel/paths.js';
import { DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE } from '../../src/kernel/packet-ring.js';
import { SERVER_SCRIPT } from '../../src/lab/servers.js';
import { Lines, NetPair, sh } from '../../test/kernel/helpers/netns.js';
import { cliPath } from '../../test/kernel/helpers/tcplens-cli.js';
import { cpuSeconds, stopProcess as stop } from './proc-cpu.js';

const seconds = Number(process.argv[2] ?? 5);
const levels = (process.argv[3] ?? '4,16,64').split(',').map(Number);
const FLOOD = join(repoRoot, 'dist', 'bench', 'http', 'http-flood.js');
const pair = new NetPair('b');
const dev = sh('ip', ['-n', pair.server.ns, '-o', 'link', 'show', 'type', 'veth']).split(':')[1].trim().split('@')[0];
const server = pair.spawnIn(pair.server, [process.execPath, SERVER_SCRIPT, 'bench', '80']);
try {
  await new Lines(server, 'stdout').wait(/listening/, 15000);
  console.log(`live capture, ${seconds} s per load, veth ${dev} in ${pair.server.ns}; tcplens and tcpdump on the same traffic at once`);
  console.log('conc  req/s   requests  exchanges  seen%  tl_drops td_drops  tl_cpu%  td_cpu%  tl_us/exch  cpu_ratio(tl/td)');
  for (const conc of levels) {
    const tl = spawn('ip', ['netns', 'exec', pair.server.ns, process.execPath, cliPath, 'http', '-i', dev, '--port', '80', '--json', '--block-timeout', '5ms'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    const tlErr = new Lines(tl, 'stderr');
    await tlErr.wait(/tcplens: attached/, 20000);
    const td = spawn('ip', ['netns', 'exec', pair.server.ns, 'tcpdump', '-i', dev, '-w', '/dev/null', '--immediate-mode', '-s', '0',
      // the same kernel buffer as tcplens's default ring (64 blocks of 256 KiB), in KiB
      '-B', String((DEFAULT_BLOCK_SIZE * DEFAULT_BLOCK_COUNT) >> 10), 'tcp', 'port', '80'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    const tdErr = new Lines(td, 'stderr');
    await tdErr.wait(/listening on/, 20000);
    const cpu0 = [cpuSeconds(tl.pid!), cpuSeconds(td.pid!)];
    const t0 = Date.now();
    const out = execFileSync('ip', ['netns', 'exec', pair.client.ns, process.execPath, FLOOD, pair.server.ip4, '80', String(conc), String(seconds)], { encoding: 'utf8' });
    await new Promise((r) => setTimeout(r, 200)); // the last blocks (5 ms timeout) and tcpdump's buffer
    const cpu1 = [cpuSeconds(tl.pid!), cpuSeconds(td.pid!)];
    const wall = (Date.now() - t0) / 1000;
    await stop(tl);
    await stop(td);
    const { requests } = JSON.parse(out) as { requests: number };
    const summary = tlErr.all.find((l) => l.startsWith('tcplens http: summary')) ?? '';
    const field = (k: string) => Number(new RegExp(` ${k}=(\\d+)`).exec(summary)?.[1] ?? NaN);
    const tdDrops = Number(/(\d+) packets? dropped by kernel/.exec(tdErr.all.join('\n'))?.[1] ?? NaN);
    const [tlCpu, tdCpu] = [cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]];
    const exchanges = field('exchanges');
    console.log([
      String(conc).padEnd(5), String(Math.round(requests / seconds)).padEnd(7), String(requests).padEnd(9), String(exchanges).padEnd(10),
      (100 * exchanges / requests).toFixed(2).padEnd(6), String(field('kernel_drops')).padEnd(8), String(tdDrops).padEnd(8),
      (100 * tlCpu / wall).toFixed(1).padEnd(8), (100 * tdCpu / wall).toFixed(1).padEnd(8),
      (1e6 * tlCpu / Math.max(1, exchanges)).toFixed(1).padEnd(11), tdCpu > 0 ? (tlCpu / tdCpu).toFixed(2) : 'n/a',
    ].join(' '));
  }
} finally {
  server.kill('SIGTERM');
  pair.dispose();
}

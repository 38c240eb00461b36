// How fast can `tcplens http` follow a gateway tier live? A `lab up --gateways 2 --pods 4` lab;
// open-loop HTTP load from a client through the balancer at rising rates, while ONE tcplens
// process captures inside both gateway namespaces (--netns twice: the balancer's leg on port 80
// and the pod leg inside IPIP on 29090) and, as the anchor on the same traffic at the same time,
// `tcpdump -i any -w /dev/null` in each gateway namespace with the same kernel buffer. Per rate:
// what the generator got answered, the exchanges tcplens saw (2 a request: both legs), kernel
// drops of both, CPU of both in % of one core (utime+stime from /proc over the load window) and
// tcplens/tcpdump as a ratio. The figure: the highest answered rate tcplens followed with zero
// kernel drops and every exchange seen, its CPU there, and what limited it (tcplens, or the lab). tcplens runs with its default ring (64 x 256 KiB blocks, 10 ms block timeout), as a user
// would. Add --balance to measure `tcplens http --balance` instead of the plain capture path.
// Needs root; run under the kernel lock:
//   flock /tmp/tcplens-kernel.lock node dist/bench/http/balance-rate.js [--balance] [--seconds 5] [--rates 200,400,800,1200,1600,2400]
//     [--connections 64] [--tcplens="--block-size 256k --block-count 64"]
import '../stdout-closed.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../../src/kernel/paths.js';
import { DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE } from '../../src/kernel/packet-ring.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import { POD_PORT } from '../../src/lab/gateway-tier.js';
import { Lines } from '../../test/kernel/helpers/netns.js';
import { cliPath } from '../../test/kernel/helpers/tcplens-cli.js';
import { cpuSeconds, stopProcess } from './proc-cpu.js';

const { values: opt } = parseArgs({ options: {
  balance: { type: 'boolean', default: false },
  seconds: { type: 'string', default: '5' },
  rates: { type: 'string', default: '200,400,800,1200,1600,2400' },
  connections: { type: 'string', default: '64' },
  /** more tcplens http flags, e.g. "--block-size 256k --block-count 64" */
  tcplens: { type: 'string', default: '' },
} });
const extra = opt.tcplens.split(' ').filter(Boolean);
const seconds = Number(opt.seconds);
const rates = opt.rates.split(',').map(Number);
const RATE = join(repoRoot, 'dist', 'bench', 'http', 'http-rate.js');

interface Row { rate: number; answeredPerS: number; sustained: boolean; seenPct: number; tlDrops: number; tdDrops: number; tlCpu: number; tdCpu: number }

const name = `br${process.pid % 100000}`;
const lab = await labUp({ name, clients: 1, servers: 2, hops: [0], ipv6: false, port: 80,
  toa4: { kind: 254, len: 8, family: 4 }, toa6: { kind: 253, len: 20, family: 6 }, gateways: 2, pods: 4 });
const ns = (node: string) => lab.topology.nodes.find((n) => n.name === node)!.netns;
const gateways = [ns('gw1'), ns('gw2')];
const rows: Row[] = [];
try {
  console.log(`balance-rate: lab ${name} (balancer -> 2 gateways -> 4 pods over IPIP), ${seconds} s per rate, ${opt.connections} keep-alive client connections; ` +
    `tcplens http${opt.balance ? ' --balance' : ''} --netns ${gateways.join(' --netns ')}${extra.length ? ` ${extra.join(' ')}` : ''} (one process) and tcpdump -i any in each gateway namespace, at once`);
  console.log('rate   answered/s  late  errors  exchanges  seen%   tl_drops  td_drops  tl_cpu%  td_cpu%  cpu_ratio(tl/td)  tl_us/exch');
  for (const rate of rates) {
    const tl = spawn(process.execPath, [cliPath, 'http', ...gateways.flatMap((g) => ['--netns', g]), '--port', '80', '--port', String(POD_PORT),
      '--json', ...(opt.balance ? ['--balance'] : []), ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    const tlErr = new Lines(tl, 'stderr');
    await tlErr.wait(/tcplens: attached/, 20000);
    const tds = gateways.map((g) => spawn('ip', ['netns', 'exec', g, 'tcpdump', '-i', 'any', '-w', '/dev/null', '--immediate-mode', '-s', '0',
      '-B', String((DEFAULT_BLOCK_SIZE * DEFAULT_BLOCK_COUNT) >> 10), 'tcp port 80 or ip proto 4'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    const tdErrs = tds.map((td) => new Lines(td, 'stderr'));
    for (const e of tdErrs) await e.wait(/listening on/, 20000);
    const pids = [tl.pid!, ...tds.map((t) => t.pid!)];
    const cpu0 = pids.map(cpuSeconds);
    const t0 = Date.now();
    const gen = spawn('ip', ['netns', 'exec', ns('client1'), process.execPath, RATE, lab.topology.vip4, '80', String(rate), String(seconds), opt.connections],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    gen.stdout.on('data', (d) => { out += d; });
    await once(gen, 'exit');
    await new Promise((r) => setTimeout(r, 300)); // the last blocks (10 ms block timeout) and tcpdump's buffer
    const cpu1 = pids.map(cpuSeconds);
    const wall = (Date.now() - t0) / 1000;
    for (const p of [tl, ...tds]) await stopProcess(p);
    const g = JSON.parse(out) as { sent: number; answered: number; errors: number; late: number; seconds: number };
    const summary = tlErr.all.find((l) => l.startsWith('tcplens http: summary')) ?? '';
    const field = (k: string) => Number(new RegExp(` ${k}=(\\d+)`).exec(summary)?.[1] ?? NaN);
    const tdDrops = tdErrs.reduce((s, e) => s + Number(/(\d+) packets? dropped by kernel/.exec(e.all.join('\n'))?.[1] ?? NaN), 0);
    const tlCpu = cpu1[0] - cpu0[0];
    const tdCpu = cpu1.slice(1).reduce((s, c, i) => s + c - cpu0[i + 1], 0);
    const exchanges = field('exchanges');
    const requests = g.answered + g.errors;
    const row: Row = { rate, answeredPerS: g.answered / seconds, sustained: g.answered >= 0.95 * rate * seconds, seenPct: (100 * exchanges) / (2 * requests),
      tlDrops: field('kernel_drops'), tdDrops, tlCpu: (100 * tlCpu) / wall, tdCpu: (100 * tdCpu) / wall };
    rows.push(row);
    console.log([
      String(rate).padEnd(6), row.answeredPerS.toFixed(0).padEnd(11), String(g.late).padEnd(5), String(g.errors).padEnd(7), String(exchanges).padEnd(10),
      row.seenPct.toFixed(2).padEnd(7), String(row.tlDrops).padEnd(9), String(tdDrops).padEnd(9), row.tlCpu.toFixed(1).padEnd(8), row.tdCpu.toFixed(1).padEnd(8),
      (tdCpu > 0 ? (tlCpu / tdCpu).toFixed(2) : 'n/a').padEnd(17), (1e6 * tlCpu / Math.max(1, exchanges)).toFixed(1),
    ].join(' '));
  }
} finally {
  await labDown(name);
}
// Past the lab's own limit (2 cores: the generator, 2 proxies and 4 pods are Node too) the target
// is not met; what counts for tcplens is the highest answered rate it followed without a drop.
const ok = rows.filter((r) => r.tlDrops === 0 && r.seenPct >= 99.9);
const best = ok.reduce<Row | undefined>((a, r) => (!a || r.answeredPerS > a.answeredPerS ? r : a), undefined);
if (best) {
  const limit = rows.some((r) => r.answeredPerS > best.answeredPerS) ? 'past it tcplens dropped or missed exchanges'
    : best.sustained ? 'the highest rate tried: try higher --rates' : `the lab could not answer more (target ${best.rate} req/s)`;
  console.log(`figure: tcplens http${opt.balance ? ' --balance' : ''} kept up with ${best.answeredPerS.toFixed(0)} req/s through the balancer ` +
    `(${(2 * best.answeredPerS).toFixed(0)} exchanges/s over both legs of 2 gateways) with 0 kernel drops and every exchange seen (${limit}), ` +
    `at ${best.tlCpu.toFixed(1)}% of one core; tcpdump -w /dev/null on the same namespaces ${best.tdCpu.toFixed(1)}% ` +
    `(tcplens/tcpdump CPU ratio ${(best.tlCpu / best.tdCpu).toFixed(2)}; generator answered/target ${(best.answeredPerS / best.rate).toFixed(2)})`);
} else {
  console.log('figure: no rate was followed with zero kernel drops and every exchange seen');
  process.exitCode = 1;
}

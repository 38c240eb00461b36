// The demo's accel section: in one server node of the lab, a local connection (a sidecar to its
// app, say) runs the same short exchange twice, as plain TCP and with `tcplens accel` on a cgroup
// made for it; the lines say how much faster it went, that every byte sent took the fast path
// (accel's own counters), and that accel is disabled again. While accel is on, a cleanup is
// registered, so an interrupted demo leaves nothing attached or pinned either.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mkdirSync } from 'node:fs';
import { disableAccel, enableAccel } from '../capabilities/accel/accel.js';
import { accelStatus } from '../capabilities/accel/status.js';
import { onCleanup, stopSignal } from '../lifecycle.js';
import { interrupted } from './checkpoint.js';
import { removeCgroupTree } from './servers.js';
import type { LabState } from './state.js';

const run = promisify(execFile);
const EXCHANGE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'accel-exchange.js');

interface Exchange { sent: number; mbps: number }

async function exchange(cgroup: string, netns: string, bytes: number): Promise<Exchange> {
  const enter = 'echo $$ > "$0/cgroup.procs" && ns="$1" && shift && exec ip netns exec "$ns" "$@"';
  const { stdout } = await run('sh', ['-c', enter, cgroup, netns, process.execPath, EXCHANGE_SCRIPT, String(bytes)],
    { signal: stopSignal, timeout: 10000 }).catch((e) => {
    if (stopSignal.aborted) throw interrupted('during the accel exchange');
    throw e;
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Exchange;
}

/** Plain, then accelerated, then disabled: the lines to print (one to two seconds in all). */
export async function demoAccel(state: LabState, log: (line: string) => void = () => {}, bytes = 256 << 20): Promise<string[]> {
  const node = state.topology.nodes.find((n) => n.role === 'server')!;
  const cgroup = join(state.cgroup, 'accel-demo');
  const dir = join(state.pinDir, 'accel');
  mkdirSync(cgroup, { recursive: true });
  let undone = false;
  const undo = async () => {
    if (undone) return;
    undone = true;
    try { disableAccel(dir); } finally { await removeCgroupTree(cgroup); }
  };
  const release = onCleanup("the demo's accel", undo);
  try {
    const plain = await exchange(cgroup, node.netns, bytes);
    enableAccel({ cgroup, ports: [] }, dir);
    log(`accel: enabled on ${cgroup}`);
    const fast = await exchange(cgroup, node.netns, bytes);
    const redirected = accelStatus(dir).counters?.redirected_bytes ?? 0;
    await undo();
    const gone = accelStatus(dir);
    return [
      `  tcplens accel: a local connection inside ${node.name}, ${bytes >> 20} MiB in 64 KiB writes, plain TCP then accelerated:`,
      `    plain ${plain.mbps.toFixed(0)} MB/s, accel ${fast.mbps.toFixed(0)} MB/s (${(fast.mbps / plain.mbps).toFixed(2)}x); ` +
        `redirected ${redirected} bytes of the ${fast.sent} bytes sent${redirected === fast.sent ? ' (all of them)' : ' (NOT all: accel missed some)'}; ` +
        `${gone.enabled ? 'STILL ENABLED' : 'disabled again, nothing attached or pinned'}`,
    ];
  } finally {
    release();
    await undo();
  }
}

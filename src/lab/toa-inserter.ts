// The balancer's TOA inserter: load toa-insert.bpf.c with the lab's dialects, attach it at TC
// ingress of every client-facing device in the balancer's namespace, and pin its maps so that
// `lab status` can read the counters from another process. The TC filters keep the program
// alive after this process exits; deleting the namespace removes them.
import { existsSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { bpffsDir } from '../kernel/pins.js';
import { join } from 'node:path';
import { BpfObject } from '../kernel/bpf-object.js';
import { BpfMap, numPossibleCpus } from '../kernel/bpf-map.js';
import { bpf, c } from '../kernel/libbpf.js';
import { objectPath } from '../kernel/paths.js';
import { TcplensError } from '../errors.js';
import { tcAttach, TC_INGRESS } from '../kernel/tc.js';
import { withNetns } from './netns.js';
import { PIN_ROOT, type TcAttachmentRecord } from './state.js';
import type { ToaDialect } from '../net/toa.js';

export const TOA_OBJECT = objectPath('src/lab/toa-insert');
const PINNED_MAPS = ['counters', 'handshakes'] as const;
const PERCPU_ARRAY = 6; // enum bpf_map_type

export type ToaInserterCounters = Record<'inserted_syn' | 'inserted_ack' | 'skipped_no_room' | 'skipped_payload' | 'failed', number>;

/** Load and attach; returns what was attached. Maps are pinned under pinDir. */
export function attachToaInserter(netns: string, devs: string[], toa4: ToaDialect, toa6: ToaDialect, pinDir: string,
  node = 'lb'): TcAttachmentRecord[] {
  const obj = BpfObject.open(TOA_OBJECT);
  try {
    obj.setRodata({ toa_kind4: toa4.kind, toa_kind6: toa6.kind });
    obj.load();
    bpffsDir(pinDir);
    for (const m of PINNED_MAPS) {
      if ((bpf.obj_pin(obj.map(m).fd, join(pinDir, m)) as number) < 0) {
        throw new TcplensError('TCPLENS_ERR_LAB', `cannot pin the TOA inserter's ${m} map under ${pinDir}`,
          'is /sys/fs/bpf a bpf filesystem? mount -t bpf bpf /sys/fs/bpf');
      }
    }
    const fd = obj.program('toa_insert').fd;
    return withNetns(netns, () => devs.map((dev) => ({ node, dev, progId: tcAttach(dev, TC_INGRESS, fd).progId })));
  } finally {
    obj.close();
  }
}

/** Counters from the pinned map, or null when nothing is pinned there. */
export function readToaCounters(pinDir: string): ToaInserterCounters | null {
  const path = join(pinDir, 'counters');
  if (!existsSync(path)) return null;
  const fd = bpf.obj_get(path) as number;
  if (fd < 0) return null;
  const obj = BpfObject.open(TOA_OBJECT); // only its BTF: the layout of the counters struct
  try {
    const layout = obj.struct('toa_insert_counters');
    const map = new BpfMap('counters', fd, 4, layout.size, 1, PERCPU_ARRAY);
    return layout.sumPerCpu(map.percpuValue(0), numPossibleCpus()) as ToaInserterCounters;
  } finally {
    obj.close();
    c.close(fd);
  }
}

/** Unpin a lab's maps (the program goes with its TC filters). */
export function removePins(pinDir: string): void {
  if (!existsSync(pinDir)) return;
  for (const f of readdirSync(pinDir)) unlinkSync(join(pinDir, f));
  rmdirSync(pinDir);
  // The shared parent goes only when nothing else of tcplens is pinned in it.
  try { rmdirSync(PIN_ROOT); } catch { /* not empty, or gone */ }
}

// Undoing TCP_SAVE_SYN where tcplens turned it on (bpf/include/save-syn.h): the kernel side keeps
// each listener it changed in `syn_saved`; here an iterator over TCP sockets runs once in each of
// their network namespaces and turns the option off again. Entries whose listener is gone (closed,
// or its namespace removed) need nothing and are dropped.
import type { BpfObject } from '../../kernel/bpf-object.js';
import type { BpfMap } from '../../kernel/bpf-map.js';
import { netnsPathByInode, withNetnsAt } from '../../kernel/netns.js';

export interface SaveSynUndo {
  /** listeners whose TCP_SAVE_SYN is off again */
  restored: number;
  /** listeners that had gone away (nothing left to undo) */
  gone: number;
  notes: string[];
}

export function listenersWithSavedSyn(obj: BpfObject, map: BpfMap = obj.map('syn_saved')): { key: Buffer; pid: number; netnsIno: number }[] {
  const l = obj.struct('save_syn_listener');
  const pid = l.offset('pid', 4), ino = l.offset('netns_ino', 4);
  return map.keys().flatMap((key) => {
    const v = map.lookup(key);
    return v ? [{ key, pid: v.readUInt32LE(pid), netnsIno: v.readUInt32LE(ino) }] : [];
  });
}

/** Run the object's save_syn_undo iterator in every namespace that has one of our listeners. */
export function undoSaveSyn(obj: BpfObject, map: BpfMap = obj.map('syn_saved')): SaveSynUndo {
  const before = listenersWithSavedSyn(obj, map);
  const notes: string[] = [];
  const byNetns = new Map<number, number[]>();
  for (const l of before) byNetns.set(l.netnsIno, [...(byNetns.get(l.netnsIno) ?? []), l.pid]);
  for (const [ino, pids] of byNetns) {
    const path = netnsPathByInode(ino, pids);
    if (!path) continue; // the namespace is gone, and its listeners with it
    try {
      withNetnsAt(path, () => obj.runIterator('save_syn_undo'));
    } catch (e) {
      notes.push(`could not turn TCP_SAVE_SYN off again in network namespace ${ino}: ${(e as Error).message}`);
    }
  }
  const left = listenersWithSavedSyn(obj, map);
  for (const l of left) map.delete(l.key);
  return { restored: before.length - left.length, gone: left.length, notes };
}

// Every capability's kernel counters: one struct of u64 fields in a per-CPU array (see
// TCPLENS_COUNTERS in bpf/include/tcplens.h), read by field name through BTF.
import type { BpfObject } from './bpf-object.js';
import { numPossibleCpus } from './bpf-map.js';

export function readCounters<K extends string>(obj: BpfObject, structName: string): Record<K, number> {
  const layout = obj.struct(structName);
  return layout.sumPerCpu(obj.map('counters').percpuValue(0), numPossibleCpus()) as Record<K, number>;
}

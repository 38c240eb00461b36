// The TOA dialect table and the trusted balancers as rodata (bpf/include/toa.h, trust.h), both
// ways: encoded through the object's BTF before load, and decoded again from a loaded program's
// rodata map, so `status` reports what the kernel really runs with. Any capability that includes
// those two headers uses this (accept, toa).
import type { BpfObject } from '../../kernel/bpf-object.js';
import { formatAddr, parseCidr, type Cidr, type Family } from '../../net/addr.js';
import { MAX_DIALECTS, type ToaDialect } from '../../net/toa.js';

/** TRUST_MAX in bpf/include/trust.h */
export const MAX_TRUSTED = 16;

export interface ToaTables { dialects: ToaDialect[]; trusted: Cidr[] }

export function toaTablesRodata(obj: BpfObject, t: ToaTables): Record<string, number | Uint8Array> {
  return {
    toa_dialects: obj.struct('toa_dialect').encodeArray(t.dialects.map((d) => ({ kind: d.kind, len: d.len, family: d.family })), MAX_DIALECTS),
    toa_dialect_count: t.dialects.length,
    trusted_lbs: obj.struct('trusted_range').encodeArray(t.trusted.map((c) => ({ net: c.net, mask: c.mask, family: c.family })), MAX_TRUSTED),
    trusted_lb_count: t.trusted.length,
  };
}

/** A rodata variable's bytes, by name, from the section image `rodata`. */
export function rodataVar(obj: BpfObject, rodata: Uint8Array, name: string): Uint8Array {
  const v = obj.btf.datasec('.rodata').get(name);
  if (!v || v.offset + v.size > rodata.length) throw new Error(`rodata has no variable '${name}' (object rebuilt since enable?)`);
  return rodata.subarray(v.offset, v.offset + v.size);
}

function uint(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return bytes.length === 1 ? dv.getUint8(0) : bytes.length === 2 ? dv.getUint16(0, true) : dv.getUint32(0, true);
}

export function rodataUint(obj: BpfObject, rodata: Uint8Array, name: string): number {
  return uint(rodataVar(obj, rodata, name));
}

/** The tables back from a rodata section image (a loaded program's .rodata map value). */
export function decodeToaTables(obj: BpfObject, rodata: Uint8Array): ToaTables {
  const dl = obj.struct('toa_dialect');
  const tl = obj.struct('trusted_range');
  const dBytes = rodataVar(obj, rodata, 'toa_dialects');
  const tBytes = rodataVar(obj, rodata, 'trusted_lbs');
  const at = (b: Uint8Array, base: number, layout: typeof dl, field: string) => {
    const f = layout.field(field);
    return b.subarray(base + f.offset, base + f.offset + f.size);
  };
  const dialects: ToaDialect[] = [];
  const nd = Math.min(rodataUint(obj, rodata, 'toa_dialect_count'), MAX_DIALECTS);
  for (let i = 0; i < nd; i++) {
    const base = i * dl.size;
    dialects.push({ kind: uint(at(dBytes, base, dl, 'kind')), len: uint(at(dBytes, base, dl, 'len')) as 8 | 20, family: uint(at(dBytes, base, dl, 'family')) as Family });
  }
  const trusted: Cidr[] = [];
  const nt = Math.min(rodataUint(obj, rodata, 'trusted_lb_count'), MAX_TRUSTED);
  for (let i = 0; i < nt; i++) {
    const base = i * tl.size;
    const family = uint(at(tBytes, base, tl, 'family')) as Family;
    const net = at(tBytes, base, tl, 'net');
    const mask = at(tBytes, base, tl, 'mask');
    let prefix = 0;
    for (const b of mask) for (let bit = 7; bit >= 0; bit--) prefix += (b >> bit) & 1;
    trusted.push(parseCidr(`${formatAddr(net, family)}/${prefix}`));
  }
  return { dialects, trusted };
}

export function dialectText(d: ToaDialect): string {
  return `${d.kind}/${d.len}`;
}

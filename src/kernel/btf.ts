// Reads struct layouts and data-section variables from an object's BTF, so that the event layout
// is written once, in C: the TypeScript side asks for offsets by field name and fails loudly
// (TCPLENS_ERR_LAYOUT) if a field it needs is missing or has changed size.
import { bpf, view, isNull, type Ptr } from './libbpf.js';
import { TcplensError } from '../errors.js';

const KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, VAR: 14, DATASEC: 15, FLOAT: 16, TYPE_TAG: 18, ENUM64: 19 } as const;

interface RawType { name: string; kind: number; vlen: number; kflag: boolean; sizeOrType: number; ptr: Ptr }

export interface FieldLayout {
  name: string;
  /** byte offset inside the struct */
  offset: number;
  size: number;
  /** 'int' (with signedness), 'array', 'struct', 'other' after typedefs/qualifiers are peeled */
  kind: 'int' | 'array' | 'struct' | 'other';
  signed: boolean;
  typeId: number;
}

export class StructLayout {
  constructor(readonly name: string, readonly size: number, readonly fields: Map<string, FieldLayout>) {}

  /** The field, checked against the size the caller's code was written for. */
  field(name: string, size?: number): FieldLayout {
    const f = this.fields.get(name);
    if (!f) {
      throw new TcplensError('TCPLENS_ERR_LAYOUT', `struct ${this.name} has no field '${name}'`,
        'the BPF object and the TypeScript side are out of step: rebuild with ./scripts/setup.sh');
    }
    if (size !== undefined && f.size !== size) {
      throw new TcplensError('TCPLENS_ERR_LAYOUT', `struct ${this.name}.${name} is ${f.size} bytes, expected ${size}`,
        'the BPF object and the TypeScript side are out of step: rebuild with ./scripts/setup.sh');
    }
    return f;
  }

  offset(name: string, size?: number): number {
    return this.field(name, size).offset;
  }

  /** Encode one struct value: integer fields from numbers, array fields from bytes. */
  encode(values: Record<string, number | bigint | Uint8Array>, out = new Uint8Array(this.size), base = 0): Uint8Array {
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (const [name, v] of Object.entries(values)) {
      const f = this.field(name);
      const at = base + f.offset;
      if (v instanceof Uint8Array) {
        if (v.length > f.size) throw new Error(`${this.name}.${name}: ${v.length} bytes > ${f.size}`);
        out.set(v, at);
        continue;
      }
      const n = BigInt(v);
      if (f.size === 1) dv.setUint8(at, Number(n & 0xffn));
      else if (f.size === 2) dv.setUint16(at, Number(n & 0xffffn), true);
      else if (f.size === 4) dv.setUint32(at, Number(n & 0xffffffffn), true);
      else if (f.size === 8) dv.setBigUint64(at, BigInt.asUintN(64, n), true);
      else throw new Error(`${this.name}.${name}: cannot encode a number into ${f.size} bytes`);
    }
    return out;
  }

  /** Encode an array of structs of `length` slots (rodata tables). */
  encodeArray(items: Record<string, number | bigint | Uint8Array>[], length: number): Uint8Array {
    if (items.length > length) throw new Error(`${this.name}: ${items.length} entries > ${length}`);
    const out = new Uint8Array(this.size * length);
    items.forEach((item, i) => this.encode(item, out, i * this.size));
    return out;
  }

  /** Sum each u64 field over the per-CPU copies of a per-CPU map value. */
  sumPerCpu(raw: Uint8Array, cpus: number): Record<string, number> {
    const stride = (this.size + 7) & ~7;
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out: Record<string, number> = {};
    for (const f of this.fields.values()) {
      if (f.size !== 8) continue;
      let sum = 0;
      for (let c = 0; c < cpus; c++) sum += Number(dv.getBigUint64(c * stride + f.offset, true));
      out[f.name] = sum;
    }
    return out;
  }
}

export class Btf {
  constructor(private readonly ptr: Ptr) {}

  private raw(id: number): RawType {
    const p = bpf.btf_type_by_id(this.ptr, id) as Ptr;
    if (isNull(p)) throw new TcplensError('TCPLENS_ERR_LAYOUT', `BTF type id ${id} not found`, 'rebuild the BPF objects');
    const dv = new DataView(view(p, 12));
    const nameOff = dv.getUint32(0, true);
    const info = dv.getUint32(4, true);
    return {
      name: nameOff ? (bpf.btf_name_by_offset(this.ptr, nameOff) as string) : '',
      kind: (info >>> 24) & 0x1f, vlen: info & 0xffff, kflag: (info >>> 31) === 1,
      sizeOrType: dv.getUint32(8, true), ptr: p,
    };
  }

  /** Peel typedefs and qualifiers. */
  private resolve(id: number): { id: number; t: RawType } {
    let t = this.raw(id);
    while ([KIND.TYPEDEF, KIND.VOLATILE, KIND.CONST, KIND.RESTRICT, KIND.TYPE_TAG].includes(t.kind as 8)) {
      id = t.sizeOrType;
      t = this.raw(id);
    }
    return { id, t };
  }

  sizeOf(id: number): number {
    const { t } = this.resolve(id);
    switch (t.kind) {
      case KIND.PTR: return 8;
      case KIND.ARRAY: {
        const a = new DataView(view(t.ptr, 24));
        return this.sizeOf(a.getUint32(12, true)) * a.getUint32(20, true);
      }
      default: return t.sizeOrType;
    }
  }

  struct(name: string): StructLayout {
    const id = bpf.btf_find_by_name_kind(this.ptr, name, KIND.STRUCT) as number;
    if (id <= 0) {
      throw new TcplensError('TCPLENS_ERR_LAYOUT', `struct ${name} is not in the object's BTF`,
        'the C side must reference the struct from a map or global so that clang emits its BTF');
    }
    return this.layoutOf(id, name);
  }

  /** The byte offset of a nested field, e.g. ['', 'cgroup', 'cgroup_id'] ('' = an anonymous union). */
  offsetOf(struct: string, path: string[]): { offset: number; size: number } {
    let layout = this.struct(struct);
    let offset = 0;
    for (let i = 0; i < path.length; i++) {
      const f = layout.field(path[i]);
      offset += f.offset;
      if (i === path.length - 1) return { offset, size: f.size };
      layout = this.layoutOf(this.resolve(f.typeId).id, `${struct}.${path.slice(0, i + 1).join('.')}`);
    }
    throw new Error('offsetOf needs a field path');
  }

  private layoutOf(id: number, name: string): StructLayout {
    const t = this.raw(id);
    const dv = new DataView(view(t.ptr, 12 + 12 * t.vlen));
    const fields = new Map<string, FieldLayout>();
    for (let i = 0; i < t.vlen; i++) {
      const base = 12 + 12 * i;
      const nameOff = dv.getUint32(base, true);
      const typeId = dv.getUint32(base + 4, true);
      const bitOff = t.kflag ? dv.getUint32(base + 8, true) & 0xffffff : dv.getUint32(base + 8, true);
      const name = bpf.btf_name_by_offset(this.ptr, nameOff) as string;
      const r = this.resolve(typeId);
      let signed = false;
      let kind: FieldLayout['kind'] = 'other';
      if (r.t.kind === KIND.INT) {
        kind = 'int';
        signed = (new DataView(view(r.t.ptr, 16)).getUint32(12, true) >>> 24 & 1) === 1;
      } else if (r.t.kind === KIND.ENUM) kind = 'int';
      else if (r.t.kind === KIND.ARRAY) kind = 'array';
      else if (r.t.kind === KIND.STRUCT || r.t.kind === KIND.UNION) kind = 'struct';
      fields.set(name, { name, offset: bitOff / 8, size: this.sizeOf(typeId), kind, signed, typeId });
    }
    return new StructLayout(name, t.sizeOrType, fields);
  }

  /** The parameter count of a function (BTF_KIND_FUNC -> its FUNC_PROTO), null if there is none. */
  functionParams(name: string): number | null {
    const id = bpf.btf_find_by_name_kind(this.ptr, name, KIND.FUNC) as number;
    if (id <= 0) return null;
    return this.raw(this.raw(id).sizeOrType).vlen;
  }

  /** Variables of a data section (".rodata", ".bss"): name -> offset and size inside the section. */
  datasec(section: string): Map<string, { offset: number; size: number; typeId: number }> {
    const id = bpf.btf_find_by_name_kind(this.ptr, section, KIND.DATASEC) as number;
    const vars = new Map<string, { offset: number; size: number; typeId: number }>();
    if (id <= 0) return vars;
    const t = this.raw(id);
    const dv = new DataView(view(t.ptr, 12 + 12 * t.vlen));
    for (let i = 0; i < t.vlen; i++) {
      const varId = dv.getUint32(12 + 12 * i, true);
      const v = this.raw(varId);
      vars.set(v.name, { offset: dv.getUint32(16 + 12 * i, true), size: dv.getUint32(20 + 12 * i, true), typeId: v.sizeOrType });
    }
    return vars;
  }
}

let vmlinux: Btf | null = null;

/** The running kernel's own BTF (/sys/kernel/btf/vmlinux): the layouts of its UAPI structs
 * (bpf_prog_info, bpf_link_info, ...) exactly as this kernel has them. */
export function kernelBtf(): Btf {
  if (!vmlinux) {
    const p = bpf.btf_load_vmlinux() as Ptr;
    if (isNull(p)) {
      throw new TcplensError('TCPLENS_ERR_NO_BTF', 'cannot load the kernel\'s BTF (/sys/kernel/btf/vmlinux)',
        'tcplens needs a kernel built with CONFIG_DEBUG_INFO_BTF=y');
    }
    vmlinux = new Btf(p);
  }
  return vmlinux;
}

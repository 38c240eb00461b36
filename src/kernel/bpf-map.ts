// A loaded map by fd: byte-level lookup/update/iterate. Callers encode keys and decode values with
// layouts read from BTF; this class only moves bytes.
import { bpf, errno, strerror } from './libbpf.js';
import { TcplensError } from '../errors.js';

const ENOENT = 2;
let possibleCpus = 0;

export function numPossibleCpus(): number {
  if (!possibleCpus) possibleCpus = bpf.num_possible_cpus() as number;
  return possibleCpus;
}

export class BpfMap {
  constructor(readonly name: string, readonly fd: number, readonly keySize: number,
    readonly valueSize: number, readonly maxEntries: number, readonly type: number) {}

  lookup(key: Uint8Array, valueSize = this.valueSize): Buffer | null {
    const value = Buffer.alloc(valueSize);
    const rc = bpf.map_lookup_elem(this.fd, key, value) as number;
    if (rc < 0) {
      if (errno() === ENOENT) return null;
      throw this.fail('lookup');
    }
    return value;
  }

  /** Atomically take an entry out (hash and LRU hash maps): no update can slip in between. */
  lookupAndDelete(key: Uint8Array): Buffer | null {
    const value = Buffer.alloc(this.valueSize);
    const rc = bpf.map_lookup_and_delete_elem(this.fd, key, value) as number;
    if (rc < 0) {
      if (errno() === ENOENT) return null;
      throw this.fail('lookup-and-delete');
    }
    return value;
  }

  /** lookupAndDelete into a caller's buffer (no allocation: for per-probe hot paths); false if absent. */
  lookupAndDeleteInto(key: Uint8Array, value: Buffer): boolean {
    if ((bpf.map_lookup_and_delete_elem(this.fd, key, value) as number) < 0) {
      if (errno() === ENOENT) return false;
      throw this.fail('lookup-and-delete');
    }
    return true;
  }

  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    if ((bpf.map_update_elem(this.fd, key, value, flags) as number) < 0) throw this.fail('update');
  }

  delete(key: Uint8Array): boolean {
    if ((bpf.map_delete_elem(this.fd, key) as number) < 0) {
      if (errno() === ENOENT) return false;
      throw this.fail('delete');
    }
    return true;
  }

  /** Keys as they are now; the map may change while we walk it (that is fine for our sweeps). */
  keys(): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (let i = 0; i <= this.maxEntries; i++) {
      const next = Buffer.alloc(this.keySize);
      if ((bpf.map_get_next_key(this.fd, prev, next) as number) < 0) break;
      out.push(next);
      prev = next;
    }
    return out;
  }

  /** The per-CPU copies of entry `index` of a per-CPU array (each padded to 8 bytes). */
  percpuValue(index = 0): Buffer {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(index);
    const v = this.lookup(key, ((this.valueSize + 7) & ~7) * numPossibleCpus());
    if (!v) throw this.fail('per-CPU lookup');
    return v;
  }

  private fail(op: string): TcplensError {
    return new TcplensError('TCPLENS_ERR_SYSCALL', `map ${this.name}: ${op} failed: ${strerror(errno())}`, 'needs root and a live map');
  }
}

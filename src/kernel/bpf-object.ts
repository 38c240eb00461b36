// One compiled BPF object through its life: open (read the ELF) -> set rodata -> load (verifier)
// -> attach -> close. close() undoes every attachment this object made, in reverse order, so a
// capability never has to remember what to detach.
import { existsSync, readSync } from 'node:fs';
import { bpf, c, errno, strerror, view, isNull, testRunOpts, testRunResult, type Ptr } from './libbpf.js';
import { TcplensError } from '../errors.js';
import { Btf, type StructLayout } from './btf.js';
import { withLibbpfLog, summariseVerifierLog } from './libbpf-log.js';
import { BpfMap } from './bpf-map.js';
import { openCgroup } from './cgroup.js';
import { progInfo } from './pins.js';

export interface Link { readonly ptr: Ptr; readonly what: string; destroy(): void; pin(path: string): void }

export class BpfObject {
  private obj: Ptr;
  private links: Link[] = [];
  private loaded = false;
  readonly btf: Btf;

  private constructor(readonly path: string, obj: Ptr) {
    this.obj = obj;
    this.btf = new Btf(bpf.object_btf(obj) as Ptr);
  }

  static open(path: string): BpfObject {
    if (!existsSync(path)) {
      throw new TcplensError('TCPLENS_ERR_NOT_BUILT', `BPF object ${path} does not exist`,
        'build it first: ./scripts/setup.sh (or make)');
    }
    const { result, log } = withLibbpfLog(() => bpf.object_open_file(path, null) as Ptr);
    if (isNull(result)) {
      throw new TcplensError('TCPLENS_ERR_LIBBPF', `libbpf cannot open ${path}: ${strerror(errno())}`,
        'rebuild the objects with ./scripts/setup.sh', log);
    }
    return new BpfObject(path, result as Ptr);
  }

  /** Write `const volatile` globals before load: numbers, bigints, booleans or raw bytes. */
  setRodata(values: Record<string, number | bigint | boolean | Uint8Array>): void {
    if (this.loaded) throw new Error('rodata must be set before load');
    const vars = this.btf.datasec('.rodata');
    const map = this.findMap((n) => n.endsWith('.rodata'));
    if (!map) throw new TcplensError('TCPLENS_ERR_LAYOUT', `${this.path} has no .rodata`, 'rebuild the BPF objects');
    const size = [0];
    const p = bpf.map_initial_value(map, size) as Ptr;
    const dv = new DataView(view(p, size[0]));
    for (const [name, value] of Object.entries(values)) {
      const v = vars.get(name);
      if (!v) throw new TcplensError('TCPLENS_ERR_LAYOUT', `${this.path} has no rodata variable '${name}'`, 'rebuild the BPF objects');
      if (value instanceof Uint8Array) {
        if (value.length > v.size) throw new Error(`rodata ${name}: ${value.length} bytes > ${v.size}`);
        new Uint8Array(dv.buffer, v.offset, v.size).fill(0).set(value);
        continue;
      }
      const n = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
      switch (v.size) {
        case 1: dv.setUint8(v.offset, Number(n & 0xffn)); break;
        case 2: dv.setUint16(v.offset, Number(n & 0xffffn), true); break;
        case 4: dv.setUint32(v.offset, Number(n & 0xffffffffn), true); break;
        case 8: dv.setBigUint64(v.offset, BigInt.asUintN(64, n), true); break;
        default: throw new Error(`rodata ${name}: cannot set a ${v.size}-byte value from a number`);
      }
    }
  }

  struct(name: string): StructLayout {
    return this.btf.struct(name);
  }

  /** Before load: use an existing map (a pinned one, say) instead of creating this object's own,
   * so new programs share state with old ones. */
  reuseMap(map: string, fd: number): void {
    const rc = bpf.map_reuse_fd(this.mapPtr(map), fd) as number;
    if (rc < 0) throw new TcplensError('TCPLENS_ERR_SYSCALL', `cannot reuse a map for '${map}': ${strerror(-rc)}`, 'the map must match the object\'s definition');
  }

  setMaxEntries(map: string, n: number): void {
    bpf.map_set_max_entries(this.mapPtr(map), n);
  }

  load(): void {
    const { result, log } = withLibbpfLog(() => bpf.object_load(this.obj) as number);
    if ((result ?? -1) < 0) {
      const err = -(result ?? -errno());
      const v = summariseVerifierLog(log);
      if (v) {
        throw new TcplensError('TCPLENS_ERR_VERIFIER',
          `the kernel's verifier rejected program '${v.program}': ${v.reason}${v.insn && v.insn !== v.reason ? ` (at ${v.insn})` : ''}`,
          'this kernel refuses the program as built; report it with the full log (--verbose)', log);
      }
      // EINVAL is a wrong argument (a map definition, a bad attach target), not a missing feature.
      if (err === 1 /* EPERM */ || err === 524 /* ENOTSUPP */ || err === 95 /* EOPNOTSUPP */) {
        throw new TcplensError('TCPLENS_ERR_UNSUPPORTED', `loading ${this.path} failed: ${strerror(err)}`,
          'the kernel refused a program type, helper or attach point; see --verbose for which one', log);
      }
      throw new TcplensError('TCPLENS_ERR_LOAD', `loading ${this.path} failed: ${strerror(err)}`, 'run with --verbose for libbpf\'s log', log);
    }
    this.loaded = true;
  }

  program(name: string): { fd: number; name: string } {
    return { fd: bpf.program_fd(this.programPtr(name)) as number, name };
  }

  map(name: string): BpfMap {
    const m = this.mapPtr(name);
    return new BpfMap(name, bpf.map_fd(m) as number, bpf.map_key_size(m) as number,
      bpf.map_value_size(m) as number, bpf.map_max_entries(m) as number, bpf.map_type(m) as number);
  }

  /** Before load: leave a program out (one of several ways to the same hook, say). */
  setAutoload(program: string, on: boolean): void {
    if (this.loaded) throw new Error('autoload must be set before load');
    bpf.program_set_autoload(this.programPtr(program), on);
  }

  /** Attach a tracing program where its section says (fexit/..., kretprobe/...). */
  attach(program: string): Link {
    return this.track(() => bpf.program_attach(this.programPtr(program)) as Ptr, program);
  }

  attachCgroup(program: string, cgroupPath: string): Link {
    const fd = openCgroup(cgroupPath);
    try {
      return this.track(() => bpf.program_attach_cgroup(this.programPtr(program), fd) as Ptr, `${program} on ${cgroupPath}`);
    } finally {
      c.close(fd);
    }
  }

  /** Run a packet program once through BPF_PROG_TEST_RUN. */
  testRun(program: string, data: Uint8Array, repeat = 0): { retval: number; duration: number; dataOut: Buffer } {
    const dataIn = Buffer.from(data);
    const dataOut = Buffer.alloc(data.length + 256);
    const opts = testRunOpts({ dataIn, dataOut, repeat });
    const rc = bpf.prog_test_run_opts(this.program(program).fd, opts) as number;
    if (rc < 0) throw new TcplensError('TCPLENS_ERR_SYSCALL', `BPF_PROG_TEST_RUN of ${program}: ${strerror(errno())}`, 'the program type must support test runs on this kernel');
    const r = testRunResult(opts);
    return { retval: r.retval, duration: r.duration, dataOut: dataOut.subarray(0, r.dataSizeOut) };
  }

  /** run_cnt and run_time_ns from the kernel's BPF statistics (counted while stats are enabled). */
  runStats(program: string): { runCnt: number; runTimeNs: number } {
    const { runCnt, runTimeNs } = progInfo(this.program(program).fd);
    return { runCnt, runTimeNs };
  }

  /** Run an iterator program (SEC("iter/...")) once over what it iterates, in the calling
   * thread's network namespace; returns what it printed (most of ours print nothing). */
  runIterator(program: string): string {
    const { result: link, log } = withLibbpfLog(() => bpf.program_attach_iter(this.programPtr(program), null) as Ptr);
    if (isNull(link)) {
      throw new TcplensError('TCPLENS_ERR_ATTACH', `cannot attach iterator ${program}: ${strerror(errno())}`, 'BPF iterators need Linux >= 5.8', log);
    }
    try {
      const fd = bpf.iter_create(bpf.link_fd(link) as number) as number;
      if (fd < 0) throw new TcplensError('TCPLENS_ERR_SYSCALL', `cannot run iterator ${program}: ${strerror(-fd)}`, 'see --verbose');
      try {
        const chunks: Buffer[] = [];
        const buf = Buffer.alloc(4096);
        for (let n; (n = readSync(fd, buf)) > 0;) chunks.push(Buffer.from(buf.subarray(0, n)));
        return Buffer.concat(chunks).toString('utf8');
      } finally {
        c.close(fd);
      }
    } finally {
      bpf.link_destroy(link as Ptr);
    }
  }

  /** Detach every program this object attached; maps stay readable until close(). */
  detachAll(): void {
    for (const l of this.links.reverse()) l.destroy();
    this.links = [];
  }

  close(): void {
    this.detachAll();
    if (!isNull(this.obj)) bpf.object_close(this.obj);
    this.obj = 0n;
  }

  private track(attach: () => Ptr, what: string): Link {
    const { result, log } = withLibbpfLog(attach);
    if (isNull(result)) {
      const err = errno();
      throw new TcplensError('TCPLENS_ERR_ATTACH', `cannot attach ${what}: ${strerror(err)}`,
        err === 1 || err === 95 || err === 524 ? 'this kernel does not allow that attach point; see --verbose' : 'see --verbose for libbpf\'s log', log);
    }
    const ptr = result as Ptr;
    let live = true;
    const link: Link = {
      ptr, what,
      destroy: () => { if (live) { live = false; bpf.link_destroy(ptr); } },
      pin: (path: string) => {
        const rc = bpf.link_pin(ptr, path) as number;
        if (rc < 0) throw new TcplensError('TCPLENS_ERR_SYSCALL', `cannot pin ${what} at ${path}: ${strerror(-rc)}`, 'is /sys/fs/bpf a bpf filesystem?');
      },
    };
    this.links.push(link);
    return link;
  }

  private programPtr(name: string): Ptr {
    const p = bpf.object_find_program_by_name(this.obj, name) as Ptr;
    if (isNull(p)) throw new TcplensError('TCPLENS_ERR_LAYOUT', `${this.path} has no program '${name}'`, 'rebuild the BPF objects');
    return p;
  }

  private mapPtr(name: string): Ptr {
    const p = this.findMap((n) => n === name);
    if (!p) throw new TcplensError('TCPLENS_ERR_LAYOUT', `${this.path} has no map '${name}'`, 'rebuild the BPF objects');
    return p;
  }

  private findMap(match: (name: string) => boolean): Ptr | null {
    let m = bpf.object_next_map(this.obj, null) as Ptr;
    while (!isNull(m)) {
      if (match(bpf.map_name(m) as string)) return m;
      m = bpf.object_next_map(this.obj, m) as Ptr;
    }
    return null;
  }
}

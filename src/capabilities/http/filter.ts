// The kernel half of the port/host filter: flags -> rodata of http.bpf.c -> a loaded socket
// filter, ready for SO_ATTACH_BPF. Its rules are packet-filter.ts's; the shared case table holds
// both to them (test/kernel/http-filter.test.ts).
import { BpfObject } from '../../kernel/bpf-object.js';
import { objectPath } from '../../kernel/paths.js';
import { readCounters } from '../../kernel/counters.js';
import { TcplensError } from '../../errors.js';
import type { Cidr } from '../../net/addr.js';

/** As HTTP_MAX_HOSTS in http.h (the rodata array's length is checked against it at load). */
export const MAX_HOSTS = 16;
export const FILTER_PROGRAM = 'http_filter';

export interface KernelFilterSpec {
  ports: readonly number[];
  hosts?: readonly Cidr[];
  /** Bytes kept of each frame; 0 keeps all of it. */
  snaplen?: number;
}

export type HttpFilterCounters = Record<'frames' | 'kept' | 'drop_not_ip' | 'drop_not_tcp' | 'drop_fragment' | 'drop_malformed' | 'drop_port' | 'drop_host', number>;

export class HttpKernelFilter {
  private constructor(readonly obj: BpfObject) {}

  /** Open the object, write the flags into rodata, load it. */
  static load(spec: KernelFilterSpec): HttpKernelFilter {
    const hosts = spec.hosts ?? [];
    if (hosts.length > MAX_HOSTS) {
      throw new TcplensError('TCPLENS_ERR_BAD_CIDR', `at most ${MAX_HOSTS} --host ranges`, 'give wider ranges');
    }
    const obj = BpfObject.open(objectPath('src/capabilities/http/http'));
    try {
      const bits = new Uint8Array(8192);
      for (const p of spec.ports) bits[p >> 3] |= 1 << (p & 7);
      const range = obj.struct('http_host_range');
      const slots = obj.btf.datasec('.rodata').get('hosts');
      if (!slots || slots.size !== range.size * MAX_HOSTS) {
        throw new TcplensError('TCPLENS_ERR_LAYOUT', 'http.bpf.o holds a different number of --host slots than tcplens expects', 'rebuild with ./scripts/setup.sh');
      }
      obj.setRodata({
        port_bits: bits,
        port_count: new Set(spec.ports).size,
        hosts: range.encodeArray(hosts.map((c) => ({ net: c.net, mask: c.mask, family: c.family })), MAX_HOSTS),
        host_count: hosts.length,
        snaplen: spec.snaplen ?? 0,
      });
      obj.load();
      return new HttpKernelFilter(obj);
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  get fd(): number {
    return this.obj.program(FILTER_PROGRAM).fd;
  }

  counters(): HttpFilterCounters {
    return readCounters(this.obj, 'http_counters');
  }

  close(): void {
    this.obj.close();
  }
}

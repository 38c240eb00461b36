// Network namespaces for the lab: run tools, and switch this thread into a namespace for the
// few things done through syscalls (TC attach, sysctls, offload switches). Only the calling
// thread changes namespace, and only for the length of a synchronous callback.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { c, koffi, errno, strerror } from '../kernel/libbpf.js';
import { withNetnsAt } from '../kernel/netns.js';
import { TcplensError } from '../errors.js';

// struct ethtool_value (linux/ethtool.h), and struct ifreq (net/if.h) as SIOCETHTOOL reads it: the
// name, then ifr_data at the start of its 24-byte union.
const EthtoolValue = koffi.struct('ethtool_value', { cmd: 'uint32_t', data: 'uint32_t' });
const IfreqData = koffi.struct('ifreq_data', {
  ifr_name: koffi.array('char', 16, 'String'), ifr_data: 'void *', _union_rest: koffi.array('uint8_t', 16),
});
const AF_INET = 2, SOCK_DGRAM = 2, SIOCETHTOOL = 0x8946, ETHTOOL_STXCSUM = 0x17;

/** Run a tool to completion; a failure becomes TCPLENS_ERR_LAB carrying the tool's own words. */
export function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const said = (err.stderr ?? '').trim().split('\n').slice(0, 4).join('; ') || err.message;
    throw new TcplensError('TCPLENS_ERR_LAB', `${cmd} ${args.slice(0, 6).join(' ')}: ${said}`,
      'run with --verbose; `tcplens lab down` removes anything left');
  }
}

/** Run a tool inside a namespace (ip netns exec), output captured. */
export function runIn(ns: string, argv: string[], input?: string): string {
  return run('ip', ['netns', 'exec', ns, ...argv], input);
}

/** Names under /run/netns. */
export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

export function deleteNetns(ns: string): void {
  // `ip netns del` also unmounts the name; a missing name is fine (down is idempotent).
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/** Call fn with this thread inside lab namespace ns; always come back. */
export function withNetns<T>(ns: string, fn: () => T): T {
  if (!existsSync(`/run/netns/${ns}`)) {
    throw new TcplensError('TCPLENS_ERR_LAB', `network namespace ${ns} does not exist`, 'is the lab up? see `tcplens lab status`');
  }
  return withNetnsAt(`/run/netns/${ns}`, fn);
}

/** Write a sysctl of the current thread's namespace (call inside withNetns). */
export function sysctl(key: string, value: string): void {
  writeFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, value);
}

/**
 * Turn off transmit checksum offload on dev (current namespace), as `ethtool -K dev tx off` does:
 * veth otherwise hands on CHECKSUM_PARTIAL packets whose checksum field is only a pseudo-header
 * sum, so neither a capture nor the receiver's TcpInCsumErrors would say whether ours are right.
 */
export function txChecksumOff(dev: string): void {
  const fd = c.socket(AF_INET, SOCK_DGRAM, 0) as number;
  if (fd < 0) throw new TcplensError('TCPLENS_ERR_SYSCALL', `socket: ${strerror(errno())}`, 'needs root');
  try {
    const value = Buffer.alloc(koffi.sizeof(EthtoolValue));
    koffi.encode(value, EthtoolValue, { cmd: ETHTOOL_STXCSUM, data: 0 });
    const ifr = Buffer.alloc(koffi.sizeof(IfreqData));
    koffi.encode(ifr, IfreqData, { ifr_name: dev.slice(0, 15), ifr_data: koffi.address(value), _union_rest: [] });
    if ((c.ioctl(fd, SIOCETHTOOL, ifr) as number) < 0) {
      throw new TcplensError('TCPLENS_ERR_LAB', `cannot turn off tx checksum offload on ${dev}: ${strerror(errno())}`, 'needs root');
    }
  } finally {
    c.close(fd);
  }
}

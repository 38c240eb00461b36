// Probe targets as people write them: tcp4://host:port, tcp6://host:port, tcp6://[addr]:port,
// host:port, [addr]:port. Pure parsing; names are resolved elsewhere. A bad target is a
// TcplensError with a code naming what is wrong, so a caller can report it per target.
import { isIPv4, isIPv6 } from 'node:net';
import { TcplensError } from '../errors.js';
import type { Family } from './addr.js';

/** Targets one run accepts. Each needs a socket while in flight and a result row; a list longer
 * than this is almost certainly a mistake (a whole address range pasted), refused up front. */
export const MAX_TARGETS = 4096;

export interface TargetSpec {
  /** as given */
  text: string;
  /** 4 or 6 when the scheme (or an address literal) fixes the family; 0: any */
  family: 0 | Family;
  host: string;
  port: number;
  /** the host is an address literal (no lookup needed) */
  literal: boolean;
}

const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const FORMS = 'tcp4://host:port, tcp6://host:port, tcp6://[addr]:port, host:port or [addr]:port';

function bad(text: string, why: string, code: 'TCPLENS_ERR_BAD_TARGET' | 'TCPLENS_ERR_BAD_PORT' = 'TCPLENS_ERR_BAD_TARGET'): TcplensError {
  return new TcplensError(code, `target ${JSON.stringify(text)}: ${why}`, `write a target as ${FORMS}`);
}

export function parseTarget(text: string): TargetSpec {
  let rest = text;
  let family: 0 | Family = 0;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (scheme) {
    const s = scheme[1].toLowerCase();
    if (s !== 'tcp4' && s !== 'tcp6') throw bad(text, `unknown scheme '${scheme[1]}' (tcp4 or tcp6)`);
    family = s === 'tcp4' ? 4 : 6;
    rest = text.slice(scheme[0].length);
  }
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(rest);
  if (!m) {
    throw bad(text, isIPv6(rest.replace(/:\d+$/, '')) || isIPv6(rest) ? 'an IPv6 address needs brackets: [addr]:port' : 'expected host:port');
  }
  const [, bracketed, plain, portText] = m;
  if (!/^\d{1,5}$/.test(portText)) throw bad(text, `port '${portText}' is not a number`, 'TCPLENS_ERR_BAD_PORT');
  const port = Number(portText);
  if (port < 1 || port > 65535) throw bad(text, `port ${port} is outside 1-65535`, 'TCPLENS_ERR_BAD_PORT');
  if (bracketed !== undefined) {
    if (!isIPv6(bracketed)) throw bad(text, `[${bracketed}] is not an IPv6 address`);
    if (family === 4) throw bad(text, 'tcp4:// with an IPv6 address');
    return { text, family: 6, host: bracketed, port, literal: true };
  }
  if (isIPv4(plain)) {
    if (family === 6) throw bad(text, 'tcp6:// with an IPv4 address');
    return { text, family: 4, host: plain, port, literal: true };
  }
  if (!HOSTNAME.test(plain) || /^[\d.]+$/.test(plain)) throw bad(text, `'${plain}' is not a host name or address`);
  return { text, family, host: plain, port, literal: false };
}

/** A run's target list, refused as a whole when empty or longer than MAX_TARGETS. */
export function checkTargetCount(n: number): void {
  if (n === 0) throw new TcplensError('TCPLENS_ERR_BAD_TARGET', 'no target given', `give one or more targets: ${FORMS}`);
  if (n > MAX_TARGETS) {
    throw new TcplensError('TCPLENS_ERR_BAD_TARGET', `${n} targets: at most ${MAX_TARGETS} in one run`,
      'split the list over several runs (each target needs a socket while it is probed)');
  }
}

// `tcplens lab` flag values -> a lab request; every mistake is a TCPLENS_ERR_BAD_FLAG (a bad
// dialect: TCPLENS_ERR_BAD_TOA, as for accept and toa) that says what is allowed.
import { TcplensError } from '../errors.js';
import { parseDialect, type ToaDialect } from '../net/toa.js';
import { GATEWAY_LIMITS, parseSkew, type Skew } from '../lab/gateway-tier.js';
import { LIMITS, validateName } from '../lab/topology.js';
import type { LabRequest } from '../lab/lab.js';
import { intFlag } from './flags.js';

export const DEFAULT_TOA4: ToaDialect = { kind: 254, len: 8, family: 4 };
export const DEFAULT_TOA6: ToaDialect = { kind: 253, len: 20, family: 6 };

/** `--toa 254/8`, `--toa 253/20`, or both: the dialect's family says which one it replaces. */
export function parseToa(values: string[]): { toa4: ToaDialect; toa6: ToaDialect } {
  const out = { toa4: DEFAULT_TOA4, toa6: DEFAULT_TOA6 };
  for (const v of values.flatMap((x) => x.split(',')).filter(Boolean)) {
    let d: ToaDialect;
    try {
      d = parseDialect(v);
    } catch (e) {
      // The one parser's code and hint, with the flag named: a user may give several.
      const err = e as TcplensError;
      throw new TcplensError(err.code, `--toa ${v}: ${err.message}`, err.hint);
    }
    if (d.family === 4) out.toa4 = d;
    else out.toa6 = d;
  }
  return out;
}

/** `--hops 0,1,2`: one value per client, or one value for all. */
export function parseHops(text: string | undefined, clients: number | undefined): { hops: number[]; clients: number } {
  if (text === undefined) {
    const n = clients ?? 3;
    return { hops: Array(n).fill(0), clients: n };
  }
  const parts = text.split(',');
  const hops = parts.map((p) => {
    if (!/^\d+$/.test(p.trim()) || Number(p) > LIMITS.hops) {
      throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--hops ${text}: '${p}' is not a hop count from 0 to ${LIMITS.hops}`,
        'e.g. --hops 0,1,2 (client 1 direct, client 2 behind one router, client 3 behind two)');
    }
    return Number(p);
  });
  const n = clients ?? hops.length;
  if (hops.length === 1) return { hops: Array(n).fill(hops[0]), clients: n };
  if (hops.length !== n) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--hops lists ${hops.length} clients but --clients is ${n}`,
      'give one hop count per client, or a single count for all of them');
  }
  return { hops, clients: n };
}

export interface LabFlagValues {
  name?: string;
  clients?: string;
  servers?: string;
  gateways?: string;
  pods?: string;
  skew?: string[];
  hops?: string;
  toa: string[];
  ipv6: boolean;
}

export function labRequest(f: LabFlagValues, defaults: { name: string; clients: number; hops?: string }): LabRequest {
  const name = validateName(f.name ?? defaults.name);
  const clients = f.clients !== undefined ? intFlag('clients', f.clients, 1, LIMITS.clients) : undefined;
  const servers = f.servers !== undefined ? intFlag('servers', f.servers, 1, LIMITS.servers) : 2;
  const hopsText = f.hops ?? (clients === undefined ? defaults.hops : undefined);
  const { hops, clients: n } = parseHops(hopsText, clients ?? (hopsText === undefined ? defaults.clients : undefined));
  if (n > LIMITS.clients) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--hops lists ${n} clients, more than ${LIMITS.clients}`, `at most ${LIMITS.clients} clients`);
  }
  const tier = gatewayTierFlags(f);
  return { name, clients: n, servers: tier ? tier.gateways : servers, hops, ipv6: f.ipv6, port: 80, ...parseToa(f.toa), ...tier };
}

/** --gateways N --pods M [--skew SPEC ...]: a second tier behind the balancer (or nothing). */
function gatewayTierFlags(f: LabFlagValues): { gateways: number; pods: number; skew: Skew } | null {
  if (f.gateways === undefined) {
    if (f.pods !== undefined || f.skew?.length) {
      throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--pods and --skew need --gateways', 'e.g. tcplens lab up --gateways 2 --pods 3 --skew lb=70,30');
    }
    return null;
  }
  if (f.servers !== undefined) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', '--servers and --gateways together: with gateways, the pods are the servers', 'give --gateways N --pods M');
  }
  const gateways = intFlag('gateways', f.gateways, 1, GATEWAY_LIMITS.gateways);
  const pods = f.pods !== undefined ? intFlag('pods', f.pods, 1, GATEWAY_LIMITS.pods) : 3;
  return { gateways, pods, skew: parseSkew(f.skew ?? [], gateways, pods) };
}

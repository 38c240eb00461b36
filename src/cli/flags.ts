// Flags are typed data: each command declares a table, and parse() turns argv into a typed
// object or a TcplensError with a code and a hint. Built on node:util parseArgs (strict).
import { parseArgs } from 'node:util';
import { TcplensError } from '../errors.js';

export interface FlagSpec {
  type: 'boolean' | 'string';
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[];
  help: string;
  /** value placeholder shown in help, e.g. CIDR */
  arg?: string;
}

export type FlagTable = Record<string, FlagSpec>;

type Value<S extends FlagSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['multiple'] extends true ? string[] : string | undefined;

export type Parsed<T extends FlagTable> = { [K in keyof T]: Value<T[K]> } & { _: string[] };

export function parseFlags<T extends FlagTable>(argv: string[], table: T, command: string): Parsed<T> {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(table)) {
    options[name] = { type: spec.type, ...(spec.short && { short: spec.short }), ...(spec.multiple && { multiple: true }) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message;
    const code = /Unknown option/.test(msg) ? 'TCPLENS_ERR_UNKNOWN_FLAG' : 'TCPLENS_ERR_BAD_FLAG';
    throw new TcplensError(code, `${command}: ${msg.replace(/\. To specify a positional.*$/s, '')}`,
      `see: tcplens ${command} --help`);
  }
  const out: Record<string, unknown> = { _: parsed.positionals };
  for (const [name, spec] of Object.entries(table)) {
    const v = (parsed.values as Record<string, unknown>)[name];
    out[name] = v ?? spec.default ?? (spec.type === 'boolean' ? false : spec.multiple ? [] : undefined);
  }
  return out as Parsed<T>;
}

export function helpText(usage: string, table: FlagTable): string {
  const rows = Object.entries(table).map(([name, s]) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'string' ? ` ${s.arg ?? 'VALUE'}` : ''}`;
    return `  ${left.padEnd(30)} ${s.help}`;
  });
  return `usage: ${usage}\n\n${rows.join('\n')}\n`;
}

/** A whole number in [min, max], or a TcplensError naming the flag. */
export function intFlag(name: string, value: string, min: number, max: number,
  code: 'TCPLENS_ERR_BAD_PORT' | 'TCPLENS_ERR_BAD_FLAG' = 'TCPLENS_ERR_BAD_FLAG'): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new TcplensError(code, `--${name} ${value}: expected a whole number from ${min} to ${max}`, `e.g. --${name} ${min}`);
  }
  return Number(value);
}

/** "10s", "250ms", "2m", "1h", "0" -> nanoseconds, at most `max` (ns), or a TcplensError naming the flag. */
// The default limit keeps a duration within what a Node timer can wait (2^31 ms, about 24.8 days).
export function durationFlag(name: string, value: string, max = 24n * 86400n * 1_000_000_000n,
  code: 'TCPLENS_ERR_BAD_WINDOW' | 'TCPLENS_ERR_BAD_FLAG' = 'TCPLENS_ERR_BAD_FLAG'): bigint {
  const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) {
    throw new TcplensError(code, `--${name} ${value}: not a duration`, `use e.g. --${name} 10s, 500ms, 5m or 2h`);
  }
  const unit = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 }[(m[2] ?? 's') as 'ns'];
  const ns = BigInt(Math.round(Number(m[1]) * unit));
  if (ns > max) {
    throw new TcplensError(code, `--${name} ${value}: longer than ${formatDuration(max)}`, `give at most ${formatDuration(max)}`);
  }
  return ns;
}

export function formatDuration(ns: bigint): string {
  const s = Number(ns / 1_000_000n) / 1000;
  if (s >= 86400 && s % 86400 === 0) return `${s / 86400}d`;
  if (s >= 3600 && s % 3600 === 0) return `${s / 3600}h`;
  if (s >= 60 && s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/** "65536", "64k", "1m", "2g" -> bytes in [min, max], or a TcplensError naming the flag. */
export function sizeFlag(name: string, value: string, min: number, max: number): number {
  const m = /^(\d+)([kmg]i?b?)?$/i.exec(value.trim());
  const n = m ? Number(m[1]) * ({ k: 1 << 10, m: 1 << 20, g: 1 << 30 }[(m[2] ?? '')[0]?.toLowerCase() as 'k'] ?? 1) : NaN;
  if (!(n >= min && n <= max)) {
    throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--${name} ${value}: expected a size from ${min} to ${max} bytes`, `e.g. --${name} 1m (k, m and g are powers of 1024)`);
  }
  return n;
}

/** Commands that take flags only: a stray word is a usage error naming the command's help. */
export function noArguments(v: { _: string[] }, command: string): void {
  if (v._.length) throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `unexpected argument '${v._[0]}'`, `see: tcplens ${command} --help`);
}

/** `tcplens CMD SUB ...` for commands made of subcommands (toa, accel): help, dispatch, or a coded error. */
export function runSubcommand(command: string, argv: string[], usage: string,
  table: Record<string, (argv: string[]) => Promise<number>>): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(usage);
    return Promise.resolve(0);
  }
  const fn = table[sub];
  if (!fn) {
    throw new TcplensError('TCPLENS_ERR_UNKNOWN_COMMAND', `unknown ${command} subcommand '${sub}'`, `use: tcplens ${command} ${Object.keys(table).join('|')}`);
  }
  return fn(rest);
}

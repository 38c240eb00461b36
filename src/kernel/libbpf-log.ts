// libbpf talks through a print callback. We keep what it says (the verifier log among it) so a
// failure can be summarised, and echo it only with --verbose.
import { bpf, c, koffi, PrintFn } from './libbpf.js';

const LEVEL_DEBUG = 2;
let captured: string[] = [];
let echo = false;
let installed = false;
const buf = Buffer.alloc(8 << 20); // verifier logs of big programs run to megabytes

function onPrint(level: number, fmt: string, args: bigint): number {
  const n = c.vsnprintf(buf, buf.length, fmt, args) as number;
  if (n <= 0) return 0;
  const text = buf.subarray(0, Math.min(n, buf.length - 1)).toString('utf8');
  if (level < LEVEL_DEBUG) captured.push(text);
  if (echo) process.stderr.write(`libbpf: ${text}`);
  return 0;
}

export function installLibbpfLog(verbose = false): void {
  echo = verbose || process.env.TCPLENS_VERBOSE === '1';
  if (installed) return;
  installed = true;
  bpf.set_print(koffi.register(onPrint, koffi.pointer(PrintFn)));
}

/** Collect libbpf's messages while fn runs. */
export function withLibbpfLog<T>(fn: () => T): { result?: T; error?: unknown; log: string } {
  installLibbpfLog(echo);
  captured = [];
  try {
    const result = fn();
    return { result, log: captured.join('') };
  } catch (error) {
    return { error, log: captured.join('') };
  } finally {
    captured = [];
  }
}

export interface VerifierSummary { program: string; reason: string; insn?: string; processed?: string; log: string }

/** Pull the verifier's own words out of libbpf's output: the failing program, the last complaint. */
export function summariseVerifierLog(log: string): VerifierSummary | null {
  const begin = log.indexOf('-- BEGIN PROG LOAD LOG --');
  if (begin < 0) return null;
  const end = log.indexOf('-- END PROG LOAD LOG --', begin);
  const body = log.slice(begin + 26, end < 0 ? undefined : end);
  const prog = /prog '([^']+)': BPF program load failed/.exec(log)?.[1] ?? /prog '([^']+)'/.exec(log)?.[1] ?? '?';
  const lines = body.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('libbpf:'));
  const processed = lines.find((l) => l.startsWith('processed '));
  const meaningful = lines.filter((l) => !l.startsWith('processed ') && !/^verification time/.test(l) && !/^stack depth/.test(l));
  const reason = meaningful[meaningful.length - 1] ?? 'rejected';
  const insn = [...meaningful].reverse().find((l) => /^\d+: \(/.test(l));
  return { program: prog, reason, insn, processed, log: body };
}

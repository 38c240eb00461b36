// Every failure a user can meet has a stable code and a hint; the CLI prints these instead of a
// stack trace. Codes are part of the interface: scripts match on them, so never rename one.
export type ErrorCode =
  | 'TCPLENS_ERR_NOT_ROOT'
  | 'TCPLENS_ERR_NO_BTF'
  | 'TCPLENS_ERR_NO_CGROUP'
  | 'TCPLENS_ERR_NO_BPFFS'
  | 'TCPLENS_ERR_NO_NETNS'
  | 'TCPLENS_ERR_NETNS_GONE'
  | 'TCPLENS_ERR_INTERNAL'
  | 'TCPLENS_ERR_NOT_BUILT'
  | 'TCPLENS_ERR_LIBBPF'
  | 'TCPLENS_ERR_LOAD'
  | 'TCPLENS_ERR_VERIFIER'
  | 'TCPLENS_ERR_ATTACH'
  | 'TCPLENS_ERR_UNSUPPORTED'
  | 'TCPLENS_ERR_LAYOUT'
  | 'TCPLENS_ERR_BAD_FLAG'
  | 'TCPLENS_ERR_UNKNOWN_FLAG'
  | 'TCPLENS_ERR_BAD_CIDR'
  | 'TCPLENS_ERR_BAD_PORT'
  | 'TCPLENS_ERR_BAD_WINDOW'
  | 'TCPLENS_ERR_BAD_TOA'
  | 'TCPLENS_ERR_UNKNOWN_COMMAND'
  | 'TCPLENS_ERR_MISSING_TOOL'
  | 'TCPLENS_ERR_LAB'
  | 'TCPLENS_ERR_TOA_STATE'
  | 'TCPLENS_ERR_MALFORMED'
  | 'TCPLENS_ERR_SYSCALL'
  | 'TCPLENS_ERR_INTERRUPTED'
  | 'TCPLENS_ERR_BAD_TARGET'
  | 'TCPLENS_ERR_RESOLVE'
  | 'TCPLENS_ERR_TIMEOUT'
  | 'TCPLENS_ERR_REFUSED'
  | 'TCPLENS_ERR_UNREACHABLE'
  | 'TCPLENS_ERR_PCAP'
  | 'TCPLENS_ERR_HTTP'
  | 'TCPLENS_ERR_NO_INTERFACE'
  | 'TCPLENS_ERR_BAD_EVENT'
  | 'TCPLENS_ERR_UNKNOWN_CAPABILITY'
  | 'TCPLENS_ERR_UNAUTHORIZED'
  | 'TCPLENS_ERR_TOO_LARGE'
  | 'TCPLENS_ERR_BAD_QUERY'
  | 'TCPLENS_ERR_NOT_FOUND'
  | 'TCPLENS_ERR_STORE'
  | 'TCPLENS_ERR_NEEDS_TOKEN'
  | 'TCPLENS_ERR_ACCEL_STATE'
  | 'TCPLENS_ERR_BUS_URL'
  | 'TCPLENS_ERR_BUS_UNREACHABLE'
  | 'TCPLENS_ERR_BUS_STREAM';

export class TcplensError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  /** Long diagnostic (a full verifier log, say), shown with --verbose. */
  readonly detail?: string;

  constructor(code: ErrorCode, message: string, hint: string, detail?: string) {
    super(message);
    this.name = 'TcplensError';
    this.code = code;
    this.hint = hint;
    this.detail = detail;
  }
}

export function isTcplensError(e: unknown): e is TcplensError {
  return e instanceof TcplensError;
}

/** The one way errors reach a person: code, message, hint; detail only when asked. */
export function formatError(e: unknown, verbose = false): string {
  if (isTcplensError(e)) {
    let out = `tcplens: ${e.code}: ${e.message}\n  hint: ${e.hint}\n`;
    if (e.detail) {
      out += verbose ? `${e.detail.trimEnd()}\n` : '  (run with --verbose for the full log)\n';
    }
    return out;
  }
  // Anything else is a bug of ours: still one coded line and a hint, the stack only when asked.
  const err = e as Error;
  return `tcplens: TCPLENS_ERR_INTERNAL: ${err?.message ?? String(e)}\n  hint: this is a bug in tcplens; run with --verbose for the stack and report it\n` +
    (verbose && err?.stack ? `${err.stack}\n` : '');
}

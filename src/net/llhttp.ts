// Our glue to llhttp's WebAssembly build as undici 7 ships it (lib/llhttp/llhttp-wasm.js; the
// way lib/dispatcher/client-h1.js drives it). One WebAssembly instance serves every parser, so:
// - it is not re-entrant: callbacks must not call execute() (guarded);
// - callbacks receive pieces of a span (a URL or header may arrive in several), the handler
//   appends;
// - memory can grow on malloc, which detaches views: views are re-made whenever the buffer changed;
// - llhttp has no header size limit of its own in this build: the handler enforces one.
import { createRequire } from 'node:module';
import { TcplensError } from '../errors.js';

const require = createRequire(import.meta.url);

interface LlhttpExports {
  memory: WebAssembly.Memory;
  malloc(n: number): number;
  free(p: number): void;
  llhttp_alloc(type: number): number;
  llhttp_free(p: number): void;
  llhttp_execute(p: number, data: number, len: number): number;
  llhttp_finish(p: number): number;
  llhttp_reset(p: number): void;
  llhttp_get_method(p: number): number;
  llhttp_get_error_reason(p: number): number;
  llhttp_get_error_pos(p: number): number;
  llhttp_resume_after_upgrade(p: number): void;
  llhttp_resume(p: number): void;
}

export const LLHTTP_TYPE_REQUEST = 1;
export const LLHTTP_TYPE_RESPONSE = 2;
const ERROR_OK = 0;
/** A callback returning this pauses the parser; execute() then answers 'paused' with the rest. */
export const PAUSE = 21;
const ERROR_PAUSED_UPGRADE = 22;
/** What on_headers_complete returns to say "this message has no body" (HEAD responses). */
export const SKIP_BODY = 1;
/** ... and "the connection switches protocol after these headers" (CONNECT 2xx). */
export const UPGRADE_AFTER_HEADERS = 2;
/** Input is copied into wasm memory in slices of this size, so wasm memory stays small. */
const SLICE_BYTES = 64 * 1024;

/** Callbacks; a non-zero return stops the parser with an error (SKIP_BODY/UPGRADE aside). */
export interface LlhttpHandler {
  onMessageBegin(): number;
  onUrl(mem: Buffer, at: number, len: number): number;
  onStatus(mem: Buffer, at: number, len: number): number;
  onHeaderField(mem: Buffer, at: number, len: number): number;
  onHeaderValue(mem: Buffer, at: number, len: number): number;
  onHeadersComplete(status: number, upgrade: boolean, keepAlive: boolean): number;
  onBody(len: number): number;
  onMessageComplete(): number;
}

/** `rest`: the input after the point where the protocol switched (a view of the caller's bytes). */
export type ExecuteResult = { kind: 'ok' } | { kind: 'upgrade' | 'paused'; rest: Uint8Array } | { kind: 'error'; reason: string };

let wasm: LlhttpExports | null = null;
let memBuffer: ArrayBuffer | null = null;
let memView: Buffer = Buffer.alloc(0);
let inputPtr = 0;
let current: LlhttpParser | null = null;
const methodNames: string[] = [];

/** Bytes of WebAssembly memory llhttp holds (for tests that bound memory). */
export function llhttpMemoryBytes(): number { return wasm ? wasm.memory.buffer.byteLength : 0; }

function view(): Buffer {
  const b = wasm!.memory.buffer;
  if (b !== memBuffer) { memBuffer = b; memView = Buffer.from(b); }
  return memView;
}

function instance(): LlhttpExports {
  if (wasm) return wasm;
  let mod: WebAssembly.Module;
  let constants: { METHODS: Record<string, number> };
  try {
    mod = new WebAssembly.Module(require('undici/lib/llhttp/llhttp-wasm.js') as Uint8Array<ArrayBuffer>);
    constants = require('undici/lib/llhttp/constants.js');
  } catch (e) {
    throw new TcplensError('TCPLENS_ERR_HTTP', `cannot load llhttp from undici: ${(e as Error).message}`,
      'run npm ci: tcplens needs the undici package (7.x) for its HTTP parser');
  }
  for (const [name, n] of Object.entries(constants.METHODS)) methodNames[n] ??= name;
  const h = () => current!.handler;
  const inst = new WebAssembly.Instance(mod, {
    env: {
      wasm_on_message_begin: () => h().onMessageBegin(),
      wasm_on_url: (_p: number, at: number, len: number) => h().onUrl(view(), at, len),
      wasm_on_status: (_p: number, at: number, len: number) => h().onStatus(view(), at, len),
      wasm_on_header_field: (_p: number, at: number, len: number) => h().onHeaderField(view(), at, len),
      wasm_on_header_value: (_p: number, at: number, len: number) => h().onHeaderValue(view(), at, len),
      wasm_on_headers_complete: (_p: number, status: number, upgrade: number, keepAlive: number) => h().onHeadersComplete(status, upgrade === 1, keepAlive === 1),
      wasm_on_body: (_p: number, _at: number, len: number) => h().onBody(len),
      wasm_on_message_complete: () => h().onMessageComplete(),
    },
  });
  wasm = inst.exports as unknown as LlhttpExports;
  inputPtr = wasm.malloc(SLICE_BYTES);
  return wasm;
}

export class LlhttpParser {
  private ptr: number;

  constructor(type: typeof LLHTTP_TYPE_REQUEST | typeof LLHTTP_TYPE_RESPONSE, readonly handler: LlhttpHandler) {
    this.ptr = instance().llhttp_alloc(type);
  }

  get methodName(): string {
    return methodNames[wasm!.llhttp_get_method(this.ptr)] ?? 'UNKNOWN';
  }

  execute(data: Uint8Array): ExecuteResult {
    const w = wasm!;
    for (let at = 0; at < data.length; at += SLICE_BYTES) {
      const slice = data.subarray(at, at + SLICE_BYTES);
      view().set(slice, inputPtr);
      const ret = this.call(() => w.llhttp_execute(this.ptr, inputPtr, slice.length));
      if (ret === ERROR_PAUSED_UPGRADE || ret === PAUSE) {
        return { kind: ret === PAUSE ? 'paused' : 'upgrade', rest: data.subarray(at + (w.llhttp_get_error_pos(this.ptr) - inputPtr)) };
      }
      if (ret !== ERROR_OK) return { kind: 'error', reason: this.errorReason() };
    }
    return { kind: 'ok' };
  }

  /** End of stream: completes a body that runs until close, or reports a message cut short. */
  finish(): ExecuteResult {
    const ret = this.call(() => wasm!.llhttp_finish(this.ptr));
    if (ret === ERROR_OK || ret === ERROR_PAUSED_UPGRADE) return { kind: 'ok' };
    return { kind: 'error', reason: this.errorReason() };
  }

  /** Continue after a callback paused the parser. */
  resume(): void { wasm!.llhttp_resume(this.ptr); }

  /** The upgrade did not happen (the server answered without 101): HTTP goes on. */
  resumeAfterUpgrade(): void { wasm!.llhttp_resume_after_upgrade(this.ptr); }

  /** Forget the message in progress (after a gap). */
  reset(): void { wasm!.llhttp_reset(this.ptr); }

  free(): void {
    if (this.ptr !== 0) { wasm!.llhttp_free(this.ptr); this.ptr = 0; }
  }

  private call(fn: () => number): number {
    if (current !== null) throw new Error('llhttp is not re-entrant: execute() called from a parser callback');
    if (this.ptr === 0) throw new Error('llhttp parser used after free()');
    current = this;
    try { return fn(); } finally { current = null; }
  }

  private errorReason(): string {
    const p = wasm!.llhttp_get_error_reason(this.ptr);
    if (!p) return 'parse error';
    const m = view();
    const end = m.indexOf(0, p);
    return m.toString('latin1', p, end < 0 ? p + 200 : Math.min(end, p + 200));
  }
}

// How a tcplens process ends, whatever ends it: its own finish, SIGINT/SIGTERM, a closed stdout
// (`tcplens accept | head -1`), or an error nobody caught (in a ring handler, a timer, a write).
// Every layer registers what it must undo with onCleanup(); the CLI's entry point runs them all,
// newest first, exactly once, then exits. A second signal while cleaning up is ignored (an
// impatient Ctrl-C must not leave namespaces or attachments behind); a hard deadline still ends
// a cleanup that hangs.
import { fstatSync } from 'node:fs';
import { formatError } from './errors.js';
import { peerClosed } from './kernel/libc.js';

export type StopReason = 'SIGINT' | 'SIGTERM' | 'stdout closed' | 'done' | 'error';

type Cleanup = () => void | Promise<void>;

const controller = new AbortController();
let reason: StopReason | null = null;
const cleanups: { fn: Cleanup; what: string }[] = [];
let cleaning: Promise<void> | null = null;
let stdoutClosed = false;

/** Aborted when the process has been asked to stop; long-running work watches it. */
export const stopSignal: AbortSignal = controller.signal;

export function stopReason(): StopReason | null {
  return reason;
}

/** Ask everything to wind down (the first reason given is kept). */
export function requestStop(why: StopReason): void {
  if (reason) return;
  reason = why;
  controller.abort(why);
}

/** True once a write to stdout failed because its reader went away: stop writing. */
export function isStdoutClosed(): boolean {
  return stdoutClosed;
}

/** Register something to undo at exit; returns a function that unregisters it (when it was undone early). */
export function onCleanup(what: string, fn: Cleanup): () => void {
  const entry = { fn, what };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** Run every registered cleanup, newest first, each once; errors are reported, never thrown. */
export function runCleanups(): Promise<void> {
  if (!cleaning) {
    cleaning = (async () => {
      while (cleanups.length) {
        const { fn, what } = cleanups.pop()!;
        try {
          await fn();
        } catch (e) {
          process.stderr.write(`tcplens: cleanup of ${what} failed: ${(e as Error)?.message ?? String(e)}\n`);
        }
      }
    })();
  }
  return cleaning;
}

/** Resolves when a stop is requested, or after ms (0: never by time); returns why it ended. */
export function untilStopped(ms = 0): Promise<StopReason> {
  if (reason) return Promise.resolve(reason);
  return new Promise((resolve) => {
    const timer = ms > 0 ? setTimeout(() => requestStop('done'), ms) : null;
    stopSignal.addEventListener('abort', () => {
      if (timer) clearTimeout(timer);
      resolve(reason!);
    }, { once: true });
  });
}

let installed = false;

/**
 * Process-wide handlers, installed once by the CLI entry point: signals and a closed stdout ask
 * for a stop; an uncaught error is printed as a tcplens error (no stack trace unless verbose),
 * everything registered is undone, and the process exits.
 */
export function installProcessHandlers(opts: { verbose: boolean; cleanupDeadlineMs?: number }): void {
  if (installed) return;
  installed = true;
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => () => {
    if (reason && reason !== 'done') return; // already stopping: let the cleanup finish
    requestStop(sig);
  };
  process.on('SIGINT', onSignal('SIGINT'));
  process.on('SIGTERM', onSignal('SIGTERM'));
  // Without a listener, EPIPE on stdout is an uncaught exception (a stack trace); with one, it is
  // the reader telling us it has had enough, as `head` does.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') {
      stdoutClosed = true;
      requestStop('stdout closed');
      return;
    }
    fatal(e, opts);
  });
  process.stderr.on('error', () => { /* nowhere left to report to */ });
  watchStdoutReader();
  process.on('uncaughtException', (e) => fatal(e, opts));
  process.on('unhandledRejection', (e) => fatal(e, opts));
}

/** A reader that goes away while we have nothing to write (`tcplens accept | head -1` once its
 * line is out) is noticed only at the next write, which may be hours off on a quiet host: ask
 * the kernel (poll reports POLLERR on a pipe without readers) a few times a second instead. */
function watchStdoutReader(): void {
  let pipe = false;
  try {
    const st = fstatSync(1);
    pipe = st.isFIFO() || st.isSocket();
  } catch { /* no stdout at all */ }
  if (!pipe) return;
  const timer = setInterval(() => {
    if (!peerClosed(1)) return;
    clearInterval(timer);
    stdoutClosed = true;
    requestStop('stdout closed');
  }, 250);
  timer.unref();
}

let dying = false;

function fatal(e: unknown, opts: { verbose: boolean; cleanupDeadlineMs?: number }): void {
  if (dying) {
    process.stderr.write(formatError(e, opts.verbose));
    return;
  }
  dying = true;
  process.stderr.write(formatError(e, opts.verbose));
  requestStop('error');
  void exitAfterCleanup(70, opts.cleanupDeadlineMs);
}

/** Undo everything, then exit with code; a cleanup that hangs past the deadline is abandoned. */
export async function exitAfterCleanup(code: number, deadlineMs = 20000): Promise<never> {
  const deadline = setTimeout(() => {
    process.stderr.write('tcplens: cleanup did not finish in time; exiting anyway\n');
    process.exit(code || 70);
  }, deadlineMs);
  deadline.unref();
  await runCleanups();
  // Flush what is still queued for stdout (unless its reader is gone), then leave: an epoll wait
  // on a pool thread or a stray handle must not keep a finished command alive.
  if (!stdoutClosed && process.stdout.writableLength > 0) {
    await new Promise<void>((r) => { process.stdout.write('', () => r()); setTimeout(r, 2000).unref(); });
  }
  process.exit(code);
}

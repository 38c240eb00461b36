// A pipe whose reader has gone (`tcplens hops ... | head -1`) is noticed by a write that fails
// with EPIPE. A command that can stay quiet for long (hops, waiting out probe timeouts) also asks
// the kernel now and then: poll() reports POLLERR on a pipe's write end once no reader is left,
// POLLHUP on a socket (node's child_process stdio) or a terminal that hung up.
import { c, POLLERR, POLLHUP } from '../kernel/libbpf.js';

/** Call onGone (once) when stdout is a pipe nobody reads any more; returns a stop function. */
export function watchStdoutReader(onGone: () => void, everyMs = 100): () => void {
  const timer = setInterval(() => {
    const pfd = { fd: 1, events: 0, revents: 0 };
    if ((c.poll1(pfd, 1, 0) as number) > 0 && (pfd.revents & (POLLERR | POLLHUP))) {
      clearInterval(timer);
      onGone();
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

// Where a lab build or demo may stop when asked to (SIGINT, SIGTERM, a closed stdout). Most lab
// steps are synchronous (ip, nft, setns), and a signal's handler only runs when the event loop
// gets a turn: a checkpoint gives it one, then throws TCPLENS_ERR_INTERRUPTED so the caller's
// cleanup runs, instead of building on for a process that is meant to end.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { TcplensError } from '../errors.js';
import { stopReason, stopSignal } from '../lifecycle.js';

export function interrupted(step: string): TcplensError {
  return new TcplensError('TCPLENS_ERR_INTERRUPTED', `interrupted (${stopReason() ?? 'stop requested'}) ${step}`,
    'everything the lab made for this command is being removed');
}

export function throwIfStopped(step: string): void {
  if (stopSignal.aborted) throw interrupted(step);
}

/** Let a pending signal be handled, then stop here if one asked to. */
export async function checkpoint(step: string): Promise<void> {
  await yieldToLoop();
  throwIfStopped(step);
}

// Which way accept names the process behind a connection, chosen per kernel by feature probes:
// an fexit (else a kretprobe) on inet_csk_accept runs in the accepting process, so its pid and
// comm are exact; without either, sock_ops names the process that called listen() where it may
// call bpf_get_current_comm, and /proc's listener index does it otherwise.
import { helperAvailable, kernelFunctionParams, kernelHasFunction, kprobesAvailable, requireHelpers } from '../../kernel/features.js';

export interface AcceptorWay { program: string; hook: string }

/** Every program of the object that hooks inet_csk_accept (all but the chosen one stay unloaded). */
export const ACCEPTOR_PROGRAMS = ['accept_fexit4', 'accept_fexit2', 'accept_kretprobe'];

export interface AcceptPlan {
  /** the object for this kernel: accept-compat before 6.2 (no bpf_cast_to_kern_ctx kfunc) */
  object: 'accept' | 'accept-compat';
  acceptor: AcceptorWay | null;
  listenerNames: boolean;
  /** why each way to the accepting process that was tried did not work here */
  refused: string[];
}

/** What every accept object needs from sock_ops; a coded error naming the kernel needed otherwise. */
export function requireAcceptKernel(): void {
  requireHelpers('accept', 'sock_ops', ['get_netns_cookie', 'get_socket_cookie']);
}

export function acceptObject(): AcceptPlan['object'] {
  return kernelHasFunction('bpf_cast_to_kern_ctx') ? 'accept' : 'accept-compat';
}

/** The ways to the accepting process worth trying here, best first (each is tried by loading it). */
export function acceptorWays(refused: string[]): AcceptorWay[] {
  const ways: AcceptorWay[] = [];
  const params = kernelFunctionParams('inet_csk_accept');
  if (params === 4) ways.push({ program: 'accept_fexit4', hook: 'fexit on inet_csk_accept' });
  else if (params === 2) ways.push({ program: 'accept_fexit2', hook: 'fexit on inet_csk_accept' });
  else refused.push(`fexit: inet_csk_accept ${params === null ? 'is not in the kernel\'s BTF' : `has ${params} parameters (known: 4 before 6.10, 2 since)`}`);
  if (kprobesAvailable()) ways.push({ program: 'accept_kretprobe', hook: 'kretprobe on inet_csk_accept' });
  else refused.push('kretprobe: this kernel has no kprobe PMU (CONFIG_KPROBES off)');
  return ways;
}

export function fallbackPlan(object: AcceptPlan['object'], refused: string[]): AcceptPlan {
  return { object, acceptor: null, listenerNames: helperAvailable('sock_ops', 'get_current_comm'), refused };
}

/** One line for --verbose: where pid/comm come from, and why not from the accepting process. */
export function describePlan(p: AcceptPlan): string {
  if (p.acceptor) return `pid/comm: the accepting process (${p.acceptor.hook}); object ${p.object}`;
  const from = p.listenerNames ? 'the process that called listen() (sock_ops at TCP_LISTEN_CB)' : 'the listening process, from /proc';
  return `pid/comm: ${from}, the fallback: the accepting process is out of reach here (${p.refused.join('; ')}); object ${p.object}`;
}

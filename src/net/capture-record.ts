// One packet as a capture file holds it. `data` is a view into the reader's input: it is valid
// only during the callback that receives it (copy what you keep), so reading costs no copy.
export interface CaptureRecord {
  linkType: number;
  /** Index of the interface in a pcapng section; 0 for classic pcap. */
  interfaceId: number;
  sec: number;
  /** Nanoseconds within `sec`, whatever the file's resolution. */
  nsec: number;
  data: Uint8Array;
  /** Length on the wire; more than data.length when the capture was cut by a snaplen. */
  origLen: number;
}

export type RecordSink = (record: CaptureRecord) => void;

/** A record larger than this is taken as corruption: no link carries it and we must not buffer it. */
export const MAX_RECORD_BYTES = 1 << 20;

/** Milliseconds since the epoch, for ISO times and latencies (sub-microsecond digits are lost). */
export function recordTimeMs(sec: number, nsec: number): number {
  return sec * 1000 + nsec / 1e6;
}

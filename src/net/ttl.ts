// Hop distance from a received TTL (IPv4) or hop limit (IPv6). Hosts start their packets at one
// of a few well-known values (Linux and macOS 64, Windows 128, network gear 255, some old stacks
// 32) and every router takes one off, so the start is the smallest of those that is not below
// what arrived, and the distance is the difference. A path longer than the gap between two
// starts (e.g. 70 hops from a 128 host) would be misread; real paths stay far below 32 hops.

/** The initial TTLs hosts use, ascending. */
export const INITIAL_TTLS = [32, 64, 128, 255] as const;

/** The initial TTL a packet that arrived with `ttl` most likely started with (1..255). */
export function initialTtl(ttl: number): number {
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw new RangeError(`not a TTL: ${ttl}`);
  return INITIAL_TTLS.find((start) => start >= ttl)!;
}

/** Routers between the sender and us: initialTtl(ttl) - ttl (0 = same link or same host). */
export function hopDistance(ttl: number): number {
  return initialTtl(ttl) - ttl;
}

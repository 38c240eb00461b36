// Hop distance from an arriving TTL / hop limit: hosts start at 32, 64, 128 or 255 (Linux and
// macOS 64, Windows 128, network gear 255); a packet loses one per router, so the smallest of
// those at or above what arrived is where it started.
const INITIAL_TTLS = [32, 64, 128, 255] as const;

export function initialTtl(ttl: number): number {
  return INITIAL_TTLS.find((t) => t >= ttl) ?? 255;
}

export function hopDistance(ttl: number): number {
  return initialTtl(ttl) - ttl;
}

// How sessions spread over Redis: a user's sessions, session index, permission set and events live
// in one partition (one hash tag, so one Cluster slot), chosen from the user; different users land
// in different partitions. With one partition (a single Redis) the layout is the one every earlier
// version wrote: the tag `{auth}` and bare cookies.

/** CRC16/XMODEM, the hash Redis Cluster maps keys to slots with. */
function crc16(text: string): number {
  let crc = 0
  for (const byte of new TextEncoder().encode(text)) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

export const CLUSTER_SLOTS = 16384

/** The Cluster slot of a key (its hash tag's, when it has one). */
export function slotOf(key: string): number {
  const open = key.indexOf('{')
  const close = open < 0 ? -1 : key.indexOf('}', open + 1)
  const hashed = open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key
  return crc16(hashed) % CLUSTER_SLOTS
}

/** The tag every key had before partitions: one partition keeps it, so live sessions stay valid. */
export const LEGACY_TAG = 'auth'

/**
 * The hash tag of each partition. Partition p's tag is the `p<p>.<n>` (n < 512) whose slot lies
 * closest to the middle of the p-th of `count` equal ranges of the slot space, so partitions sit
 * evenly across the slots and any contiguous split of the slots among masters (which
 * `redis-cli --cluster create` and resharding make) gives each master its share of them.
 */
export function partitionTags(count: number): string[] {
  if (count === 1) return [LEGACY_TAG]
  const width = CLUSTER_SLOTS / count
  return Array.from({ length: count }, (_, p) => {
    const centre = (p + 0.5) * width
    let best = `p${p}.0`
    for (let n = 0; n < 512; n++) {
      const tag = `p${p}.${n}`
      if (Math.abs(slotOf(`{${tag}}`) - centre) < Math.abs(slotOf(`{${best}}`) - centre)) best = tag
    }
    return best
  })
}

/**
 * The partition of a user: a multiplicative hash of the id (Knuth's constant), so consecutive ids
 * spread evenly and the partition a cookie names tells little about the id beyond itself.
 */
export function partitionOfUser(userId: number, count: number): number {
  if (count === 1) return 0
  return Number((BigInt(userId >>> 0) * 2654435761n) % 4294967296n) % count
}

// The per-instance session cache: a bounded LRU that lets a recently seen cookie skip Redis.
//
// A partition's entries are trusted only while this instance is reading that partition's event
// stream (a lease renewed by every XREAD that returns); without that, a logout on another instance
// could go unseen. Entries are also never filled from a Redis read that raced with an eviction
// (see `epoch`).

import { LRUCache } from 'lru-cache'
import type { Session } from '../../store'

export interface SessionCache {
  /** A cached live-looking session, or undefined (also whenever its partition is not trusted). */
  get(tokenHash: string): Session | undefined
  /** Eviction counter; read it before a Redis read and pass it to `set`. */
  readonly epoch: number
  /** Caches a session read from Redis, unless an eviction happened since `epoch` was read. */
  set(session: Session, epoch: number): void
  delete(tokenHash: string): void
  deleteUser(userId: number): void
  clear(): void
  /** Trust a partition's entries for `ms` more milliseconds: its stream reader just heard from Redis. */
  renewTrust(partition: number, ms: number): void
  /** Stop trusting a partition (and empty the cache): its stream cannot be read. */
  distrust(partition: number): void
  /** Stop trusting every partition (and empty the cache). */
  distrustAll(): void
  trusted(partition: number): boolean
  readonly size: number
}

export function createSessionCache(
  max: number,
  partitions = 1,
  clock: () => number = performance.now.bind(performance),
): SessionCache {
  const byUser = new Map<number, Set<string>>()
  const lru = new LRUCache<string, Session>({
    max,
    dispose(session, tokenHash) {
      const hashes = byUser.get(session.userId)
      hashes?.delete(tokenHash)
      if (hashes?.size === 0) byUser.delete(session.userId)
    },
  })
  const trustedUntil = new Float64Array(partitions)
  let epoch = 0
  const isTrusted = (partition: number) => clock() < (trustedUntil[partition] ?? 0)
  // Entries that were filled while a partition's stream went unread may miss an eviction: all go.
  const forgetAll = () => {
    epoch++
    lru.clear()
  }

  return {
    get(tokenHash) {
      const session = lru.get(tokenHash)
      return session && isTrusted(session.partition) ? session : undefined
    },
    get epoch() {
      return epoch
    },
    set(session, seenEpoch) {
      if (seenEpoch !== epoch || !isTrusted(session.partition)) return
      lru.set(session.tokenHash, session)
      const hashes = byUser.get(session.userId)
      if (hashes) hashes.add(session.tokenHash)
      else byUser.set(session.userId, new Set([session.tokenHash]))
    },
    delete(tokenHash) {
      epoch++
      lru.delete(tokenHash)
    },
    deleteUser(userId) {
      epoch++
      for (const tokenHash of [...(byUser.get(userId) ?? [])]) lru.delete(tokenHash)
    },
    clear() {
      epoch++
      lru.clear()
    },
    renewTrust(partition, ms) {
      trustedUntil[partition] = Math.max(trustedUntil[partition] ?? 0, clock() + ms)
    },
    distrust(partition) {
      trustedUntil[partition] = 0
      forgetAll()
    },
    distrustAll() {
      trustedUntil.fill(0)
      forgetAll()
    },
    trusted(partition) {
      return isTrusted(partition)
    },
    get size() {
      return lru.size
    },
  }
}

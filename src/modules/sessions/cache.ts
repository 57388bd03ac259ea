// The per-instance session cache: a bounded LRU that lets a recently seen cookie skip Redis.
//
// It is trusted only while this instance is reading the event stream (a lease renewed by every
// XREAD that returns); without that, a logout on another instance could go unseen. Entries are
// also never filled from a Redis read that raced with an eviction (see `epoch`).

import { LRUCache } from 'lru-cache'
import type { Session } from './store'

export interface SessionCache {
  /** A cached live-looking session, or undefined (also whenever the cache is not trusted). */
  get(tokenHash: string): Session | undefined
  /** Eviction counter; read it before a Redis read and pass it to `set`. */
  readonly epoch: number
  /** Caches a session read from Redis, unless an eviction happened since `epoch` was read. */
  set(session: Session, epoch: number): void
  delete(tokenHash: string): void
  deleteUser(userId: number): void
  clear(): void
  /** Trust the cache for `ms` more milliseconds: the stream reader just heard from Redis. */
  renewTrust(ms: number): void
  /** Stop trusting (and empty) the cache: the stream cannot be read. */
  distrust(): void
  readonly trusted: boolean
  readonly size: number
}

export function createSessionCache(max: number, clock: () => number = performance.now.bind(performance)): SessionCache {
  const byUser = new Map<number, Set<string>>()
  const lru = new LRUCache<string, Session>({
    max,
    dispose(session, tokenHash) {
      const hashes = byUser.get(session.userId)
      hashes?.delete(tokenHash)
      if (hashes?.size === 0) byUser.delete(session.userId)
    },
  })
  let trustedUntil = 0
  let epoch = 0
  const isTrusted = () => clock() < trustedUntil

  return {
    get(tokenHash) {
      return isTrusted() ? lru.get(tokenHash) : undefined
    },
    get epoch() {
      return epoch
    },
    set(session, seenEpoch) {
      if (seenEpoch !== epoch || !isTrusted()) return
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
    renewTrust(ms) {
      trustedUntil = Math.max(trustedUntil, clock() + ms)
    },
    distrust() {
      trustedUntil = 0
      epoch++
      lru.clear()
    },
    get trusted() {
      return isTrusted()
    },
    get size() {
      return lru.size
    },
  }
}

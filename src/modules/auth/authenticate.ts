// Turns a cookie value into a live session, or nothing: the single session lookup of a request.

import type { AppContext } from '../../context'
import { rethrowRedis, withRedis } from '../../lib/errors'
import {
  hashToken,
  isSessionLive,
  needsTouch,
  parseCookieValue,
  readSession,
  type Session,
  touchSession,
} from '../../store'
import { endExpiredSession } from '../sessions/service'

/**
 * `fresh` skips the local cache. Permission checks use it, so a revoke made through any instance
 * binds on the very next request everywhere; plain authentication accepts the cache, whose
 * evictions trail a logout elsewhere by the event stream's delay (milliseconds).
 *
 * Answered synchronously when it can be (no cookie, a malformed one, or a cached session with no
 * touch due): the common authenticated request then waits on nothing at all.
 */
export type Authenticate = (cookieValue: unknown, fresh?: boolean) => Session | undefined | Promise<Session | undefined>

export function createAuthenticator(ctx: AppContext): Authenticate {
  const { store } = ctx
  const cache = ctx.sessionCache
  // Series resolved once: these count on every authenticated request.
  const { sessionLookups } = ctx.metrics
  const fromCacheValid = sessionLookups.of('cache', 'valid')
  const fromCacheInvalid = sessionLookups.of('cache', 'invalid')
  const fromRedisValid = sessionLookups.of('redis', 'valid')
  const fromRedisInvalid = sessionLookups.of('redis', 'invalid')
  const cacheHits = ctx.metrics.cacheHits.of()
  const cacheMisses = ctx.metrics.cacheMisses.of()
  const endExpired = (session: Session, now: number) => endExpiredSession(ctx, session, now)

  /** Writes last-seen back (due once per touch interval: needsTouch); false when the session is gone. */
  const touch = async (session: Session, now: number): Promise<boolean> => {
    const lastSeenAt = await withRedis(() => touchSession(store, session, now))
    if (lastSeenAt === undefined) return false
    session.lastSeenAt = lastSeenAt
    return true
  }

  // One promise from the read to the answer: this runs on every request the cache cannot answer.
  const fromRedis = (partition: number, tokenHash: string, now: number): Promise<Session | undefined> => {
    const epoch = cache?.epoch ?? 0
    const keep = (session: Session) => {
      cache?.set(session, epoch)
      return session
    }
    return readSession(store, partition, tokenHash).then((session) => {
      if (!session) {
        fromRedisInvalid.inc()
        return undefined
      }
      if (!isSessionLive(session, now, store.idleTimeoutMs)) {
        fromRedisInvalid.inc()
        endExpired(session, now)
        return undefined
      }
      if (!needsTouch(store, session, now)) {
        fromRedisValid.inc()
        return keep(session)
      }
      return touch(session, now).then((live) => {
        if (!live) {
          fromRedisInvalid.inc()
          return undefined
        }
        fromRedisValid.inc()
        return keep(session)
      })
    }, rethrowRedis)
  }

  const touchCached = (cached: Session, now: number): Promise<Session | undefined> =>
    touch(cached, now).then((live) => {
      if (live) {
        fromCacheValid.inc()
        return cached
      }
      fromCacheInvalid.inc()
      cache?.delete(cached.tokenHash)
      return undefined
    })

  return function authenticate(cookieValue, fresh = false) {
    // Validated before it touches Redis or a log: anything but a 43-character base64url token (in
    // a partition that exists) is simply "no session".
    const cookie = parseCookieValue(cookieValue, store.partitions)
    if (!cookie) return undefined
    const tokenHash = hashToken(cookie.token)
    const now = ctx.now()
    const hit = fresh ? undefined : cache?.get(tokenHash)
    // Only the cookie the server issued: the same token under another partition is no session.
    const cached = hit?.partition === cookie.partition ? hit : undefined
    if (cached) {
      if (now >= cached.expiresAt) {
        cacheHits.inc()
        fromCacheInvalid.inc()
        endExpired(cached, now)
        return undefined
      }
      // Idle by our copy's clock: another instance may have seen it since, so Redis decides.
      if (now - cached.lastSeenAt < store.idleTimeoutMs) {
        cacheHits.inc()
        if (needsTouch(store, cached, now)) return touchCached(cached, now)
        fromCacheValid.inc()
        return cached
      }
    }
    if (cache && !fresh) cacheMisses.inc()
    return fromRedis(cookie.partition, tokenHash, now)
  }
}

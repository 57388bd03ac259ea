// Verifies a Tessera session cookie straight from Redis (one Redis or a Cluster), for other
// TypeScript services: no HTTP round trip, and no Elysia or PostgreSQL in the import graph (only
// ioredis and the store's pure modules).

import type { RedisClient } from './store/client'
import { createStoreKeys, type StoreKeys } from './store/keys'
import { isSessionLive, parseSession } from './store/record'
import { hashToken, parseCookieValue } from './store/token'

export interface VerifyOptions {
  /** Tessera's REDIS_KEY_PREFIX. Default `tessera:`. */
  prefix?: string
  /** Tessera's REDIS_PARTITIONS. Default 1 (a single Redis); 16 with a cluster, unless set. */
  partitions?: number
  /**
   * Tessera's SESSION_IDLE_TIMEOUT in ms. Optional: the key's TTL already enforces the idle limit;
   * given, it is also checked against the record's last-seen time, as Tessera itself does.
   */
  idleTimeoutMs?: number
  /** The current time in ms since the epoch (tests). Default `Date.now()`. */
  now?: number
}

export interface VerifiedSession {
  userId: number
  username: string
  /** As granted; `superuser` implies every other permission (see hasPermission). */
  permissions: string[]
  /** Absolute expiry, ms since the epoch. */
  expiresAt: number
  /** When the session idles out without further use (never later than `expiresAt`). */
  idleExpiresAt: number
  /** The public session id shown in listings (never the token or its hash). */
  sessionId: string
  /** When the session last proved the password, ms since the epoch: demand a recent one for sensitive actions. */
  authenticatedAt: number
}

const keysByLayout = new Map<string, StoreKeys>()
function keysFor(prefix: string, partitions: number): StoreKeys {
  const layout = `${partitions}|${prefix}`
  let keys = keysByLayout.get(layout)
  if (!keys) {
    keys = createStoreKeys(prefix, partitions)
    keysByLayout.set(layout, keys)
  }
  return keys
}

/**
 * The session a cookie value names, or null when it is malformed, unknown, ended or expired (idle
 * or absolute). Read-only: it never extends the session, so use by other services alone does not
 * keep it from idling out. Redis errors are thrown, never turned into null: "cannot tell" is not
 * "logged out", and the caller should answer 503 rather than 401.
 */
export async function verifySession(
  redis: RedisClient,
  cookieValue: unknown,
  options: VerifyOptions = {},
): Promise<VerifiedSession | null> {
  // Checked before Redis or any log sees it, exactly as Tessera does.
  // A Cluster client (it has `nodes`) means Tessera's cluster default; ioredis stays a type import.
  const partitions = options.partitions ?? (typeof (redis as { nodes?: unknown }).nodes === 'function' ? 16 : 1)
  const cookie = parseCookieValue(cookieValue, partitions)
  if (!cookie) return null
  const tokenHash = hashToken(cookie.token)
  const key = keysFor(options.prefix ?? 'tessera:', partitions).session(cookie.partition, tokenHash)
  const replies = await redis.multi().get(key).pttl(key).exec()
  if (!replies) return null
  const [[readError, raw], [ttlError, ttl]] = replies as [[Error | null, string | null], [Error | null, number]]
  if (readError) throw readError
  if (ttlError) throw ttlError
  const session = parseSession(cookie.partition, tokenHash, raw)
  // Tessera always sets a TTL (the idle limit); a record without one is not a session it wrote.
  if (!session || ttl <= 0) return null
  const now = options.now ?? Date.now()
  if (now >= session.expiresAt) return null
  const idleTimeoutMs = options.idleTimeoutMs
  if (idleTimeoutMs !== undefined && !isSessionLive(session, now, idleTimeoutMs)) return null
  const idleExpiresAt = Math.min(
    now + ttl,
    idleTimeoutMs === undefined ? Number.POSITIVE_INFINITY : session.lastSeenAt + idleTimeoutMs,
    session.expiresAt,
  )
  return {
    userId: session.userId,
    username: session.username,
    permissions: session.permissions,
    expiresAt: session.expiresAt,
    idleExpiresAt,
    sessionId: session.publicId,
    authenticatedAt: session.authenticatedAt,
  }
}

export { hasPermission, type Permission } from './modules/permissions/catalogue'
/** The value of one cookie in a `Cookie` request header, for services without a cookie parser. */
export { cookieFromHeader } from './store/token'

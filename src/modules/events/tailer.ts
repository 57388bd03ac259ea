// Tails the auth event stream on a connection of its own and keeps the local session cache honest:
// every event that ends or changes sessions evicts them, and the cache is trusted only while reads
// keep coming back.

import type Redis from 'ioredis'
import type { Logger } from '../../lib/logger'
import { describeError } from '../../lib/logger'
import { type AuthEvent, decodeEvent, eventSessionHashes } from '../../redis/events'
import type { RedisKeys } from '../../redis/keys'
import type { SessionCache } from '../sessions/cache'

export interface EventTailerOptions {
  /** A dedicated connection: XREAD BLOCK would stall every other command sharing it. */
  redis: Redis
  keys: RedisKeys
  cache: SessionCache
  logger: Logger
  signal: AbortSignal
  blockMs?: number
  /** Called after each event has been applied to the cache (tests, metrics). */
  onEvent?: (event: AuthEvent, id: string) => void
}

/** Applies one event to the cache: what it ended or changed is dropped and re-read from Redis. */
export function applyEventToCache(cache: SessionCache, event: AuthEvent): void {
  for (const hash of eventSessionHashes(event)) cache.delete(hash)
  switch (event.type) {
    case 'all_sessions_revoked':
      cache.clear()
      return
    case 'user_sessions_revoked':
    case 'permission_granted':
    case 'permission_revoked':
    case 'user_disabled':
    case 'user_deleted':
    case 'password_changed':
      cache.deleteUser(event.subjectId)
      return
  }
}

/** Stream ids are `ms-seq`; compares them numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am !== bm ? am - bm : as - bs
}

type XReadReply = [stream: string, entries: [id: string, fields: string[]][]][] | null

const BATCH = 500

/**
 * Runs until the signal aborts. Resumes from the last id it applied after any failure; when that
 * id may have been trimmed away (the oldest entry is newer), events were missed and the whole
 * cache is dropped.
 */
export async function runEventTailer(options: EventTailerOptions): Promise<void> {
  const { redis, keys, cache, logger, signal, blockMs = 1_000, onEvent } = options
  // Trust lasts one blocking read plus a margin; a silently dead connection lets it lapse.
  const leaseMs = blockMs + 1_000
  let lastId: string | undefined
  let failures = 0
  const onClose = () => cache.distrust()
  redis.on('close', onClose)
  signal.addEventListener('abort', () => redis.disconnect(), { once: true })

  try {
    while (!signal.aborted) {
      try {
        if (lastId === undefined) {
          // Starting fresh: nothing cached yet, so begin at the stream's current end.
          const [newest] = (await redis.xrevrange(keys.events, '+', '-', 'COUNT', 1)) as [string, string[]][]
          lastId = newest?.[0] ?? '0-0'
        } else if (failures > 0) {
          await dropCacheIfEventsWereMissed(redis, keys, cache, lastId, logger)
        }
        failures = 0
        const reply = (await redis.xread(
          'COUNT',
          BATCH,
          'BLOCK',
          blockMs,
          'STREAMS',
          keys.events,
          lastId,
        )) as XReadReply
        const entries = reply?.[0]?.[1] ?? []
        for (const [id, fields] of entries) {
          const event = decodeEvent(fields)
          if (event) {
            applyEventToCache(cache, event)
            onEvent?.(event, id)
          }
          lastId = id
        }
        if (entries.length === BATCH) await dropCacheIfEventsWereMissed(redis, keys, cache, lastId, logger)
        cache.renewTrust(leaseMs)
      } catch (error) {
        if (signal.aborted) break
        cache.distrust()
        failures++
        if (failures === 1)
          logger.warn('event stream unreadable; local session cache off', { error: describeError(error) })
        await Bun.sleep(Math.min(50 * 2 ** failures, 1_000))
      }
    }
  } finally {
    redis.off('close', onClose)
    cache.distrust()
  }
}

export async function dropCacheIfEventsWereMissed(
  redis: Redis,
  keys: RedisKeys,
  cache: SessionCache,
  lastId: string,
  logger: Logger,
): Promise<void> {
  const [oldest] = (await redis.xrange(keys.events, '-', '+', 'COUNT', 1)) as [string, string[]][]
  // Our position is still in the stream (or right before its first entry): nothing was lost.
  if (oldest && compareStreamIds(oldest[0], lastId) <= 0) return
  if (!oldest && lastId === '0-0') return
  cache.clear()
  logger.warn('event stream position lost (trimmed or Redis restarted); local session cache dropped', { lastId })
}

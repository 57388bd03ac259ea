// Tails every partition's event stream, each on a connection of its own, and keeps the local
// session cache honest: every event that ends or changes sessions evicts them, and a partition's
// cached sessions are trusted only while its reads keep coming back.

import type { Logger } from '../../lib/logger'
import { describeError } from '../../lib/logger'
import type { Metrics } from '../../lib/metrics'
import { sleep } from '../../lib/sleep'
import {
  type AuthEvent,
  decodeEvent,
  eventSessionHashes,
  PartitionConnection,
  type RedisClient,
  type StoreKeys,
} from '../../store'
import type { SessionCache } from '../sessions/cache'

export interface EventTailerOptions {
  /** The shared client: the tailer opens its own blocking connections from it, one per partition. */
  redis: RedisClient
  keys: StoreKeys
  cache: SessionCache
  logger: Logger
  signal: AbortSignal
  blockMs?: number
  /** Called after each event has been applied to the cache (tests). */
  onEvent?: (event: AuthEvent, id: string, partition: number) => void
  metrics?: Pick<Metrics, 'tailerLag' | 'tailerReconnects' | 'dependencyErrors'>
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

/** Runs one reader per partition until the signal aborts. */
export async function runEventTailer(options: EventTailerOptions): Promise<void> {
  const { keys } = options
  await Promise.all(Array.from({ length: keys.partitions }, (_, partition) => tailPartition(options, partition)))
}

/**
 * One partition's reader. Resumes from the last id it applied after any failure; when that id may
 * have been trimmed away (the oldest entry is newer), events were missed and the whole cache is
 * dropped.
 */
async function tailPartition(options: EventTailerOptions, partition: number): Promise<void> {
  const { redis, keys, cache, logger, signal, blockMs = 1_000, onEvent, metrics } = options
  const lag = metrics?.tailerLag.labels(String(partition))
  const stream = keys.events(partition)
  // Trust lasts one blocking read plus a margin; a silently dead connection lets it lapse.
  const leaseMs = blockMs + 1_000
  const connection = new PartitionConnection(redis, stream, () => cache.distrust(partition))
  let lastId: string | undefined
  let failures = 0
  signal.addEventListener('abort', () => connection.reset(), { once: true })

  try {
    while (!signal.aborted) {
      try {
        const reader = await connection.get()
        if (lastId === undefined) {
          // Starting fresh: nothing cached yet, so begin at the stream's current end.
          const [newest] = (await reader.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][]
          lastId = newest?.[0] ?? '0-0'
        } else if (failures > 0) {
          await dropCacheIfEventsWereMissed(reader, stream, cache, lastId, logger)
        }
        failures = 0
        const reply = (await reader.xread('COUNT', BATCH, 'BLOCK', blockMs, 'STREAMS', stream, lastId)) as XReadReply
        const entries = reply?.[0]?.[1] ?? []
        for (const [id, fields] of entries) {
          const event = decodeEvent(fields)
          if (event) {
            applyEventToCache(cache, event)
            onEvent?.(event, id, partition)
          }
          lastId = id
        }
        if (entries.length === BATCH) await dropCacheIfEventsWereMissed(reader, stream, cache, lastId, logger)
        cache.renewTrust(partition, leaseMs)
        // An entry's id is the Redis time it was added: how old it was when applied is how far
        // behind this reader runs; a read that found nothing new has caught up.
        lag?.set(entries.length > 0 ? Math.max(0, Date.now() - Number(lastId.split('-')[0])) / 1000 : 0)
      } catch (error) {
        if (signal.aborted) break
        cache.distrust(partition)
        connection.reset()
        metrics?.tailerReconnects.inc({ partition: String(partition) })
        metrics?.dependencyErrors.inc({ dependency: 'redis' })
        failures++
        if (failures === 1) {
          logger.warn('event stream unreadable; local session cache off for its partition', {
            partition,
            error: describeError(error),
          })
        }
        await sleep(Math.min(50 * 2 ** failures, 1_000))
      }
    }
  } finally {
    connection.reset()
    cache.distrust(partition)
  }
}

export async function dropCacheIfEventsWereMissed(
  reader: Pick<RedisClient, 'xrange'>,
  stream: string,
  cache: SessionCache,
  lastId: string,
  logger: Logger,
): Promise<void> {
  const [oldest] = (await reader.xrange(stream, '-', '+', 'COUNT', 1)) as [string, string[]][]
  // Our position is still in the stream (or right before its first entry): nothing was lost.
  if (oldest && compareStreamIds(oldest[0], lastId) <= 0) return
  if (!oldest && lastId === '0-0') return
  cache.clear()
  logger.warn('event stream position lost (trimmed or Redis restarted); local session cache dropped', {
    stream,
    lastId,
  })
}

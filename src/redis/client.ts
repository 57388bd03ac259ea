// Redis connections tuned to fail fast: an outage must become a 503 in seconds, not a hung request.

import Redis, { type RedisOptions } from 'ioredis'

export function createRedis(url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, {
    lazyConnect: true,
    // Commands issued while disconnected fail at once instead of queueing behind a reconnect.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
    commandTimeout: 3_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1_000),
    // Commands issued in the same tick (concurrent requests) share one write to the socket.
    enableAutoPipelining: true,
    // Session reads are already batched into one MGET per turn (batched-get.ts): no second deferral.
    autoPipeliningIgnoredCommands: ['mget'],
    ...overrides,
  })
}

/** Connects and waits until the server answers PING, or throws. */
export async function connectRedis(redis: Redis): Promise<void> {
  if (redis.status === 'wait') await redis.connect()
  await redis.ping()
}

/** A connection of its own for blocking reads (XREAD BLOCK), which would stall shared traffic. */
export function duplicateForBlocking(redis: Redis): Redis {
  // In-flight reads fail at once when the connection drops, so the reader notices; new ones wait
  // for the reconnect instead of failing in a tight loop.
  return redis.duplicate({ commandTimeout: undefined, enableOfflineQueue: true, maxRetriesPerRequest: 0 })
}

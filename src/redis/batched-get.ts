// GETs issued in the same event-loop turn go to Redis as one MGET: every uncached authenticated
// request reads one session record, and one command per turn costs a fraction of one per request.

import type Redis from 'ioredis'

export type BatchedGet = (key: string) => Promise<string | null>

interface Waiter {
  resolve(value: string | null): void
  reject(error: unknown): void
}

/**
 * The batch is sent once the turn's I/O has been handled (setImmediate), the same point at which
 * ioredis would flush an auto-pipeline, so a read waits no longer than it did as a plain GET. A
 * failed MGET fails every read in it: each request then answers 503, as a failed GET would.
 */
export function createBatchedGet(redis: Redis, maxBatch = 256): BatchedGet {
  let keys: string[] = []
  let waiters: Waiter[] = []

  const flush = () => {
    if (keys.length === 0) return
    const sent = waiters
    const batch = keys
    keys = []
    waiters = []
    redis.mget(batch).then(
      (values) => {
        for (let i = 0; i < sent.length; i++) sent[i]?.resolve(values[i] ?? null)
      },
      (error) => {
        for (const waiter of sent) waiter.reject(error)
      },
    )
  }

  return function batchedGet(key) {
    return new Promise((resolve, reject) => {
      if (keys.length === 0) setImmediate(flush)
      keys.push(key)
      waiters.push({ resolve, reject })
      if (keys.length >= maxBatch) flush()
    })
  }
}

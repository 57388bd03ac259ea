// GETs issued in the same event-loop turn go to Redis as one MGET: every uncached authenticated
// request reads one session record, and one command per turn costs a fraction of one per request.
// On a cluster, one MGET per partition: a command's keys must share a slot.

import { Cluster } from 'ioredis'
import type { RedisClient } from './client'

export type BatchedGet = (key: string) => Promise<string | null>

interface Waiter {
  key: string
  resolve(value: string | null): void
  reject(error: unknown): void
}

/** The hash tag of a key (its slot's name), or the key. */
function tagOf(key: string): string {
  const open = key.indexOf('{')
  const close = open < 0 ? -1 : key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}

function send(redis: RedisClient, waiters: Waiter[]): void {
  redis.mget(...waiters.map((w) => w.key)).then(
    (values) => {
      for (let i = 0; i < waiters.length; i++) waiters[i]?.resolve(values[i] ?? null)
    },
    (error) => {
      for (const waiter of waiters) waiter.reject(error)
    },
  )
}

/**
 * The batch is sent once the turn's I/O has been handled (setImmediate), the same point at which
 * ioredis would flush an auto-pipeline, so a read waits no longer than it did as a plain GET. A
 * failed MGET fails every read in it: each request then answers 503, as a failed GET would.
 */
export function createBatchedGet(redis: RedisClient, maxBatch = 256): BatchedGet {
  const cluster = redis instanceof Cluster
  let waiters: Waiter[] = []

  const flush = () => {
    if (waiters.length === 0) return
    const batch = waiters
    waiters = []
    if (!cluster) return send(redis, batch)
    const bySlot = new Map<string, Waiter[]>()
    for (const waiter of batch) {
      const tag = tagOf(waiter.key)
      const group = bySlot.get(tag)
      if (group) group.push(waiter)
      else bySlot.set(tag, [waiter])
    }
    for (const group of bySlot.values()) send(redis, group)
  }

  return function batchedGet(key) {
    return new Promise((resolve, reject) => {
      if (waiters.length === 0) setImmediate(flush)
      waiters.push({ key, resolve, reject })
      if (waiters.length >= maxBatch) flush()
    })
  }
}

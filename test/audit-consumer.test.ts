// The audit consumer as a real process: SIGKILLed in the middle of a burst and replaced, every
// stream entry still lands in audit_events exactly once; SIGTERM stops it cleanly.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { createDatabase, type Database } from '../src/db/client'
import { createStoreKeys, encodeEvent } from '../src/store'
import { createTestDatabase, deleteKeys, REDIS_URL } from './helpers'
import { startCli, waitFor } from './processes'

const prefix = `test:audit:${Date.now().toString(36)}:`
const keys = createStoreKeys(prefix)
let redis: Redis
let database: Database
let databaseUrl: string
let dropDatabase: () => Promise<void>

beforeAll(async () => {
  const db = await createTestDatabase('audit_consumer')
  databaseUrl = db.url
  dropDatabase = db.drop
  database = createDatabase(db.url, { max: 2 })
  redis = new Redis(REDIS_URL)
})

afterAll(async () => {
  await deleteKeys(redis, prefix)
  await redis.quit()
  await database.close()
  await dropDatabase()
})

const consumerVars = (name: string) => ({
  DATABASE_URL: databaseUrl,
  REDIS_URL,
  REDIS_KEY_PREFIX: prefix,
  AUDIT_CONSUMER_NAME: name,
  AUDIT_CLAIM_IDLE: '500ms',
  LOG_LEVEL: 'info',
})

async function writeBurst(from: number, count: number): Promise<void> {
  const pipeline = redis.pipeline()
  for (let i = from; i < from + count; i++) {
    const fields = encodeEvent({
      type: 'login_failed',
      username: `user${i}`,
      reason: 'bad_credentials',
      at: Date.now(),
      instance: 'burst',
      actorId: 0,
      subjectId: 0,
      ip: '127.0.0.1',
    })
    pipeline.xadd(keys.events(0), '*', ...fields)
  }
  await pipeline.exec()
}

async function recordedRows(): Promise<{ total: number; distinct: number }> {
  const [row] = await database.sql<{ total: number; distinct: number }[]>`
    select count(*)::int as total, count(distinct stream_id)::int as distinct from audit_events`
  return row ?? { total: 0, distinct: 0 }
}

describe('audit consumer', () => {
  test('SIGKILL mid-burst, restart: every stream entry is recorded exactly once', async () => {
    const first = startCli('src/cli/audit.ts', consumerVars('audit-a'))
    await writeBurst(0, 500)
    // Let it take part of the burst, then kill it without warning while more keeps coming.
    await waitFor(async () => (await recordedRows()).total > 0, 15_000, 'first rows recorded')
    const writing = (async () => {
      for (let batch = 0; batch < 10; batch++) {
        await writeBurst(500 + batch * 150, 150)
        await Bun.sleep(5)
      }
    })()
    first.proc.kill('SIGKILL')
    await first.proc.exited
    await writing

    // A new consumer with another name: it must claim what the dead one left pending.
    const second = startCli('src/cli/audit.ts', consumerVars('audit-b'))
    try {
      const streamLength = await redis.xlen(keys.events(0))
      expect(streamLength).toBe(2000)
      await waitFor(async () => (await recordedRows()).total >= streamLength, 30_000, 'all entries recorded')
      await Bun.sleep(300)
      const rows = await recordedRows()
      expect(rows.total).toBe(streamLength)
      expect(rows.distinct).toBe(streamLength)
      const entries = (await redis.xrange(keys.events(0), '-', '+')).map(([id]) => id).sort()
      const ids = (await database.sql<{ stream_id: string }[]>`select stream_id from audit_events`)
        .map((r) => r.stream_id)
        .sort()
      expect(ids).toEqual(entries)
      // What the dead consumer had delivered but not acknowledged is claimed and acknowledged too.
      const pendingCount = async () => ((await redis.xpending(keys.events(0), 'audit')) as [number])[0]
      await waitFor(async () => (await pendingCount()) === 0, 10_000, 'no pending entries')
      expect(await recordedRows()).toEqual({ total: streamLength, distinct: streamLength })
      // And the dead consumer, silent with nothing pending, is removed from the group (after ten
      // claim periods: 5 s here).
      const consumerNames = async () =>
        ((await redis.xinfo('CONSUMERS', keys.events(0), 'audit')) as string[][]).map((fields) => fields[1])
      expect(await consumerNames()).toContain('audit-b')
      // The log line follows the removal; waiting for it (the output is read asynchronously) also
      // waits for the removal.
      await waitFor(
        async () => second.output().includes('audit consumer removed from the group'),
        15_000,
        'audit-a removed',
      )
      expect(await consumerNames()).toEqual(['audit-b'])
    } finally {
      await second.stop()
    }
  }, 60_000)

  test('SIGTERM stops it cleanly with exit code 0', async () => {
    const consumer = startCli('src/cli/audit.ts', consumerVars('audit-c'))
    await writeBurst(5000, 20)
    await waitFor(async () => (await recordedRows()).total >= 2020, 15_000, 'new entries recorded')
    consumer.proc.kill('SIGTERM')
    const code = await Promise.race([consumer.proc.exited, Bun.sleep(5_000).then(() => 'timeout')])
    expect(code).toBe(0)
    expect(consumer.output()).toContain('audit consumer stopped')
  }, 30_000)
})

// The outbox relay: rows are claimed with a lease (SKIP LOCKED), applied outside any transaction,
// set aside after repeated failures without holding up the rows after them, and pruned once applied.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eq, sql } from 'drizzle-orm'
import { createContext } from '../src/context'
import { outbox } from '../src/db/schema'
import { UnavailableError } from '../src/lib/errors'
import { silentLogger } from '../src/lib/logger'
import { enqueueOutbox, OUTBOX_MAX_ATTEMPTS, pruneOutbox, relayOutbox } from '../src/modules/outbox'
import { createRedis } from '../src/store'
import { createTestEnv, type TestEnv } from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('outbox')
})
afterAll(() => env.close())

const eventMessage = (n: number) => ({
  kind: 'event' as const,
  at: Date.now(),
  event: { type: 'user_enabled' as const, instance: 'outbox-test', actorId: 0, subjectId: n },
})

const row = async (id: number) => (await env.database.db.select().from(outbox).where(eq(outbox.id, id)))[0]

async function clearOutbox() {
  await env.database.db.delete(outbox)
}

describe('the outbox relay', () => {
  test('holds no transaction or row lock while it waits on Redis', async () => {
    await clearOutbox()
    const id = await enqueueOutbox(env.database.db, eventMessage(1))
    // A server that accepts connections and never answers: every command waits for its timeout.
    const silent = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
    const stalled = createRedis(`redis://127.0.0.1:${silent.port}`, { enableReadyCheck: false, commandTimeout: 1500 })
    stalled.on('error', () => {})
    await stalled.connect()
    const ctx = createContext({ config: env.config, db: env.database.db, redis: stalled, logger: silentLogger })
    try {
      const relaying = relayOutbox(ctx, undefined).catch((error: unknown) => error)
      await Bun.sleep(500)
      const database = new URL(env.databaseUrl).pathname.slice(1)
      const [open] = await env.database.sql<{ count: number }[]>`
        select count(*)::int from pg_stat_activity where datname = ${database} and state like 'idle in transaction%'`
      expect(open?.count).toBe(0)
      // The row can be locked by anyone else meanwhile: the claim is a lease, not a lock.
      await env.database.sql.begin(async (tx) => {
        await tx`select id from outbox where id = ${id} for update nowait`
      })
      expect(await relaying).toBeInstanceOf(UnavailableError)
      // The outage is not the row's fault: released, not counted.
      expect(await row(id)).toMatchObject({ appliedAt: null, attempts: 0, claimedUntil: null, failedAt: null })
    } finally {
      stalled.disconnect()
      silent.stop(true)
    }
    expect(await relayOutbox(env.ctx)).toBe(1)
  })

  test('a row that keeps failing is set aside after the cap; the rows after it are applied', async () => {
    await clearOutbox()
    const [bad] = await env.database.db
      .insert(outbox)
      .values({ kind: 'bogus', payload: { kind: 'bogus' }, attempts: OUTBOX_MAX_ATTEMPTS - 2 })
      .returning({ id: outbox.id })
    const good = await enqueueOutbox(env.database.db, eventMessage(2))
    if (!bad) throw new Error('no row')

    expect(await relayOutbox(env.ctx)).toBe(1)
    expect((await row(good))?.appliedAt).not.toBeNull()
    const retried = await row(bad.id)
    expect(retried).toMatchObject({ attempts: OUTBOX_MAX_ATTEMPTS - 1, failedAt: null })
    expect(retried?.lastError).toContain('bogus')
    // Backed off: not claimed again until its retry time.
    expect(await relayOutbox(env.ctx)).toBe(0)
    expect((await row(bad.id))?.attempts).toBe(OUTBOX_MAX_ATTEMPTS - 1)

    await env.database.db.update(outbox).set({ claimedUntil: null }).where(eq(outbox.id, bad.id))
    expect(await relayOutbox(env.ctx)).toBe(0)
    const failed = await row(bad.id)
    expect(failed?.attempts).toBe(OUTBOX_MAX_ATTEMPTS)
    expect(failed?.failedAt).not.toBeNull()
    // Set aside for good: never claimed again, even with its lease gone.
    await env.database.db.update(outbox).set({ claimedUntil: null }).where(eq(outbox.id, bad.id))
    expect(await relayOutbox(env.ctx)).toBe(0)
    expect((await row(bad.id))?.attempts).toBe(OUTBOX_MAX_ATTEMPTS)
  })

  test('relayers running at once take disjoint rows', async () => {
    await clearOutbox()
    for (let n = 0; n < 60; n++) await enqueueOutbox(env.database.db, eventMessage(100 + n))
    const counts = await Promise.all([relayOutbox(env.ctx, undefined, 60), relayOutbox(env.ctx, undefined, 60)])
    expect(counts[0] + counts[1]).toBe(60)
    const [pending] = await env.database.sql<{ count: number }[]>`
      select count(*)::int from outbox where applied_at is null`
    expect(pending?.count).toBe(0)
  })

  test('applied rows are pruned after a day; failed and pending rows stay', async () => {
    await clearOutbox()
    const old = await enqueueOutbox(env.database.db, eventMessage(3))
    const recent = await enqueueOutbox(env.database.db, eventMessage(4))
    const failed = await enqueueOutbox(env.database.db, eventMessage(5))
    const pending = await enqueueOutbox(env.database.db, eventMessage(6))
    const ago = (hours: number) => sql`now() - ${hours} * interval '1 hour'`
    await env.database.db
      .update(outbox)
      .set({ appliedAt: ago(30) })
      .where(eq(outbox.id, old))
    await env.database.db
      .update(outbox)
      .set({ appliedAt: ago(2) })
      .where(eq(outbox.id, recent))
    await env.database.db
      .update(outbox)
      .set({ failedAt: ago(30) })
      .where(eq(outbox.id, failed))
    expect(await pruneOutbox(env.ctx)).toBe(1)
    const left = (await env.database.db.select({ id: outbox.id }).from(outbox)).map((r) => r.id).sort()
    expect(left).toEqual([recent, failed, pending].sort())
  })
})

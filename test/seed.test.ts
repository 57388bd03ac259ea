// Boot-time seeding creates the configured superuser only on a database that has none, through the
// same evented steps as any other change, and never re-creates a deliberately deleted admin.

import { afterEach, describe, expect, test } from 'bun:test'
import type Redis from 'ioredis'
import { type AppContext, createContext } from '../src/context'
import { createDatabase, type Database } from '../src/db/client'
import { silentLogger } from '../src/lib/logger'
import { deleteUser } from '../src/modules/admin/service'
import { systemActor } from '../src/modules/auth/client'
import { seedDatabase } from '../src/modules/users/seed'
import { changePermission, createUser } from '../src/modules/users/service'
import { connectRedis, createRedis, decodeEvent } from '../src/store'
import { ADMIN_PASSWORD, createTestDatabase, deleteKeys, REDIS_URL, testConfig } from './helpers'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A fresh database and key prefix, not seeded. */
async function freshContext(label: string): Promise<{ ctx: AppContext; database: Database; redis: Redis }> {
  const db = await createTestDatabase(label)
  const prefix = `test:${label}:${Date.now().toString(36)}:`
  const redis = createRedis(REDIS_URL)
  await connectRedis(redis)
  const database = createDatabase(db.url, { max: 4 })
  cleanups.push(async () => {
    await deleteKeys(redis, prefix)
    await redis.quit()
    await database.close()
    await db.drop()
  })
  const ctx = createContext({ config: testConfig(db.url, prefix), db: database.db, redis, logger: silentLogger })
  return { ctx, database, redis }
}

const superusers = async (database: Database): Promise<string[]> =>
  (
    await database.sql<{ username: string }[]>`
      select u.username from grants g join users u on u.id = g.user_id where g.permission = 'superuser' order by u.id`
  ).map((row) => row.username)

async function events(ctx: AppContext) {
  return (await ctx.redis.xrange(ctx.store.keys.events(0), '-', '+')).map(([, fields]) => decodeEvent(fields))
}

describe('seeding', () => {
  test('a database without a superuser gets the configured admin, announced like any other change', async () => {
    const { ctx, database } = await freshContext('seed_fresh')
    await seedDatabase(ctx)
    expect(await superusers(database)).toEqual(['admin'])
    const [admin] = await database.sql<{ id: number; permissions_version: number }[]>`
      select id, permissions_version from users where username = 'admin'`
    // The grant bumped the version like any grant, so a login that read the user before sees it.
    expect(admin?.permissions_version).toBe(1)
    const seen = await events(ctx)
    expect(seen.map((e) => e?.type)).toEqual(['user_created', 'permission_granted'])
    expect(seen[1]).toMatchObject({ subjectId: admin?.id, actorId: 0, permission: 'superuser' })
    const [pending] = await database.sql<{ count: number }[]>`select count(*)::int from outbox where applied_at is null`
    expect(pending?.count).toBe(0)
  })

  test('a deleted admin stays deleted while another superuser remains', async () => {
    const { ctx, database } = await freshContext('seed_deleted')
    await seedDatabase(ctx)
    const [admin] = await database.sql<{ id: number }[]>`select id from users where username = 'admin'`
    const adminActor = { ...systemActor(), id: admin?.id ?? 0 }
    const root = await createUser(ctx, { username: 'root2', password: 'root2-password' }, systemActor())
    await changePermission(ctx, { username: 'root2', permission: 'superuser', actor: adminActor }, 'grant')
    await deleteUser(ctx, { userId: admin?.id ?? 0, actor: adminActor })

    await seedDatabase(ctx)
    expect(await superusers(database)).toEqual(['root2'])
    const [again] = await database.sql<{ count: number }[]>`select count(*)::int from users where username = 'admin'`
    expect(again?.count).toBe(0)
    expect(root.username).toBe('root2')
  })

  test('an existing account with the admin name is never promoted', async () => {
    const { ctx, database } = await freshContext('seed_squatter')
    await createUser(ctx, { username: 'Admin', password: 'squatter-password' }, systemActor())
    await seedDatabase(ctx)
    expect(await superusers(database)).toEqual([])
    expect(ctx.config.adminPassword).toBe(ADMIN_PASSWORD)
  })

  test('instances seeding at once create one admin', async () => {
    const { ctx, database } = await freshContext('seed_race')
    await Promise.all([seedDatabase(ctx), seedDatabase(ctx), seedDatabase(ctx)])
    expect(await superusers(database)).toEqual(['admin'])
    expect((await events(ctx)).filter((e) => e?.type === 'permission_granted')).toHaveLength(1)
  })
})

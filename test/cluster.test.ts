// Tessera on a Redis Cluster the test starts itself (3 masters, one replica each): the proof of
// concept's sequence, sessions spread over every master, cross-instance logout and revocation with
// real server processes, and the audit consumer's exactly-once through a SIGKILL.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Cluster } from 'ioredis'
import { createApp } from '../src/app'
import { createContext } from '../src/context'
import { createDatabase, type Database } from '../src/db/client'
import { silentLogger } from '../src/lib/logger'
import { seedDatabase } from '../src/modules/users/seed'
import { connectRedis, createRedisClient, encodeEvent, type RedisClient, slotOf } from '../src/store'
import { startRedisCluster, type TestCluster } from './cluster'
import { ADMIN_PASSWORD, call, createTestDatabase, sessionTokenFrom, testConfig } from './helpers'
import { http, loginVia, startCli, startServer, waitFor } from './processes'

let cluster: TestCluster
let database: Database
let databaseUrl: string
let dropDatabase: () => Promise<void>
let redis: RedisClient
const prefix = 'tessera:'

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicas: 1 })
  const db = await createTestDatabase('cluster')
  databaseUrl = db.url
  dropDatabase = db.drop
  database = createDatabase(db.url, { max: 4 })
  redis = createRedisClient({ url: 'redis://unused', clusterNodes: cluster.seeds })
  await connectRedis(redis)
}, 60_000)

afterAll(async () => {
  redis?.disconnect()
  await database?.close()
  await dropDatabase?.()
  await cluster?.stop()
})

function clusterApp(overrides: Record<string, string> = {}) {
  const config = testConfig(databaseUrl, prefix, { REDIS_CLUSTER_NODES: cluster.seeds.join(','), ...overrides })
  const deps = { config, db: database.db, redis, logger: silentLogger }
  return { app: createApp(deps), ctx: createContext(deps), config }
}

const serverVars = () => ({
  DATABASE_URL: databaseUrl,
  REDIS_CLUSTER_NODES: cluster.seeds.join(','),
  REDIS_KEY_PREFIX: prefix,
})

describe('on a Redis Cluster', () => {
  test("the proof of concept's sequence", async () => {
    const { app, ctx, config } = clusterApp()
    expect(ctx.store.partitions).toBe(16)
    await seedDatabase(ctx)
    const grant = { username: 'bob', permission: 'user:assign' }
    expect((await call(app, 'POST', '/user/assign', { body: grant })).status).toBe(401)
    expect((await call(app, 'POST', '/user', { body: { username: 'bob', password: 'bob-password-1' } })).status).toBe(
      201,
    )
    const login = await call(app, 'POST', '/user/login', { body: { username: 'bob', password: 'bob-password-1' } })
    expect(login.status).toBe(200)
    const token = sessionTokenFrom(login, config.cookieName)
    // The cookie names its partition and nothing else: `<partition>.<43 random characters>`.
    expect(token).toMatch(/^[0-9a-z]{1,2}\.[A-Za-z0-9_-]{43}$/)
    const bob = `${config.cookieName}=${token}`
    expect((await call(app, 'POST', '/user/assign', { body: grant, cookie: bob })).status).toBe(403)
    const adminLogin = await call(app, 'POST', '/user/login', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
    })
    expect(adminLogin.status).toBe(200)
    const admin = `${config.cookieName}=${sessionTokenFrom(adminLogin, config.cookieName)}`
    expect((await call(app, 'POST', '/user/assign', { body: grant, cookie: admin })).status).toBe(200)
    const me = (await (await call(app, 'GET', '/user/me', { cookie: bob })).json()) as { permissions: string[] }
    expect(me.permissions).toContain('user:assign')
  })

  test('3,000 sessions of 300 users spread so that each master holds 20-45 % of them', async () => {
    const { app, ctx } = clusterApp()
    const users = await database.sql<{ id: number }[]>`
      insert into users (username, password_hash)
      select 'spread' || n, 'x' from generate_series(1, 300) n returning id`
    const { createSession } = await import('../src/store')
    const now = Date.now()
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        users.map((user) =>
          createSession(ctx.store, {
            user: { id: user.id, username: `spread${user.id}`, permissions: [], permissionsVersion: 0 },
            ip: '127.0.0.1',
            userAgent: 'spread-test',
            now,
            event: {
              type: 'login_succeeded',
              username: 'spread',
              instance: 'test',
              actorId: user.id,
              subjectId: user.id,
            },
          }),
        ),
      )
    }
    const topology = await cluster.topology()
    expect(topology).toHaveLength(3)
    const counts: number[] = []
    for (const { master } of topology) {
      const node = cluster.connect(master)
      let cursor = '0'
      let count = 0
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}{*}:s:*`, 'COUNT', 1000)
        cursor = next
        count += keys.length
      } while (cursor !== '0')
      counts.push(count)
      node.disconnect()
    }
    const total = counts.reduce((a, b) => a + b, 0)
    expect(total).toBeGreaterThanOrEqual(3000)
    for (const count of counts) {
      expect(count / total).toBeGreaterThanOrEqual(0.2)
      expect(count / total).toBeLessThanOrEqual(0.45)
    }
    expect(app).toBeDefined()
  }, 60_000)

  test('logout on instance A is 401 on instance B at once; a revoke binds at once on both', async () => {
    const a = await startServer(serverVars())
    const b = await startServer(serverVars())
    try {
      await http(a.url, 'POST', '/user', { body: { username: 'carol', password: 'carol-password' } })
      const carol = await loginVia(a.url, 'carol', 'carol-password')
      // B caches it.
      expect((await http(b.url, 'GET', '/user/me', { cookie: carol })).status).toBe(200)
      expect((await http(a.url, 'POST', '/user/logout', { cookie: carol })).status).toBe(200)
      await waitFor(async () => (await http(b.url, 'GET', '/user/me', { cookie: carol })).status === 401, 1_000, 'B')

      const admin = await loginVia(a.url, 'admin', ADMIN_PASSWORD)
      await http(a.url, 'POST', '/user', { body: { username: 'dave', password: 'dave-password' } })
      const grant = { username: 'dave', permission: 'audit:read' }
      expect((await http(a.url, 'POST', '/user/assign', { cookie: admin, body: grant })).status).toBe(200)
      const dave = await loginVia(b.url, 'dave', 'dave-password')
      expect((await http(b.url, 'GET', '/audit', { cookie: dave })).status).toBe(200)
      expect((await http(a.url, 'POST', '/user/unassign', { cookie: admin, body: grant })).status).toBe(200)
      // The very next request, on either instance.
      expect((await http(b.url, 'GET', '/audit', { cookie: dave })).status).toBe(403)
      expect((await http(a.url, 'GET', '/audit', { cookie: dave })).status).toBe(403)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  }, 60_000)

  test('the audit consumer records every event of every partition exactly once through a SIGKILL', async () => {
    const { ctx } = clusterApp()
    const { keys } = ctx.store
    const writeBurst = async (from: number, count: number) => {
      await Promise.all(
        Array.from({ length: count }, (_, i) => {
          const subject = from + i
          return (redis as Cluster).xadd(
            keys.events(keys.partitionOfUser(subject)),
            '*',
            ...encodeEvent({
              type: 'login_failed',
              username: `burst${subject}`,
              reason: 'bad_credentials',
              at: Date.now(),
              instance: 'burst',
              actorId: 0,
              subjectId: subject,
            }),
          )
        }),
      )
    }
    const streamTotal = async () => {
      let total = 0
      for (let p = 0; p < keys.partitions; p++) total += await redis.xlen(keys.events(p))
      return total
    }
    const rows = async () => {
      const [row] = await database.sql<{ total: number; distinct: number }[]>`
        select count(*)::int as total, count(distinct stream_id)::int as distinct from audit_events`
      return row ?? { total: 0, distinct: 0 }
    }
    const vars = (name: string) => ({ ...serverVars(), AUDIT_CONSUMER_NAME: name, AUDIT_CLAIM_IDLE: '500ms' })
    const first = startCli('src/cli/audit.ts', vars('cluster-audit-a'))
    await writeBurst(100_000, 400)
    await waitFor(async () => (await rows()).total > 0, 20_000, 'first rows')
    const writing = (async () => {
      for (let batch = 0; batch < 6; batch++) await writeBurst(200_000 + batch * 100, 100)
    })()
    first.proc.kill('SIGKILL')
    await first.proc.exited
    await writing
    const second = startCli('src/cli/audit.ts', vars('cluster-audit-b'))
    try {
      const total = await streamTotal()
      await waitFor(async () => (await rows()).total >= total, 30_000, 'every entry recorded')
      await Bun.sleep(500)
      expect(await rows()).toEqual({ total, distinct: total })
      // Recorded under their partition: `<partition>/<stream id>`.
      const [sample] = await database.sql<{ stream_id: string }[]>`select stream_id from audit_events limit 1`
      expect(sample?.stream_id).toMatch(/^\d+\/\d+-\d+$/)
    } finally {
      await second.stop()
    }
  }, 90_000)

  test('partition tags spread over the slot space', () => {
    const { ctx } = clusterApp()
    const slots = Array.from({ length: 16 }, (_, p) => slotOf(ctx.store.keys.events(p)))
    expect(new Set(slots).size).toBe(16)
    expect(slots).toEqual([...slots].sort((x, y) => x - y))
  })
})

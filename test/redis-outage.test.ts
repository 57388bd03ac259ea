// A running instance (cache on) against a test-owned redis-server that is stopped, restarted and
// partitioned away: 503 while Redis is gone, recovery within seconds, no revoked session ever
// served from the local cache, and a grant committed during the outage applied once Redis is back.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { createContext } from '../src/context'
import { createDatabase, type Database } from '../src/db/client'
import { silentLogger } from '../src/lib/logger'
import { changePermission } from '../src/modules/users/service'
import { createRedis, createStoreKeys, deleteSession, hashToken, readSession } from '../src/store'
import { createTestDatabase, freePort, testConfig } from './helpers'
import {
  http,
  loginVia,
  msUntilStatus,
  type RedisProcess,
  redisServer,
  type ServerProcess,
  startServer,
  type TcpProxy,
  tcpProxy,
} from './processes'

const prefix = 'test:outage:'
let redisProcess: RedisProcess
let proxy: TcpProxy
let server: ServerProcess
let redis: Redis
let database: Database
let databaseUrl: string
let dropDatabase: () => Promise<void>

/** A context of the test's own over the same Redis and database, for direct store calls. */
function directContext(redisClient: Redis) {
  const config = testConfig(databaseUrl, prefix, { REDIS_URL: redisProcess.url })
  return createContext({ config, db: database.db, redis: redisClient, logger: silentLogger })
}

const tokenOf = (cookie: string) => cookie.split('=')[1] ?? ''

beforeAll(async () => {
  const db = await createTestDatabase('redis_outage')
  databaseUrl = db.url
  dropDatabase = db.drop
  database = createDatabase(db.url, { max: 2 })
  redisProcess = redisServer(freePort(), { persistent: true })
  await redisProcess.start()
  proxy = tcpProxy(redisProcess.port)
  redis = new Redis(redisProcess.url, { maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  server = await startServer({
    DATABASE_URL: db.url,
    REDIS_URL: `redis://127.0.0.1:${proxy.port}/0`,
    REDIS_KEY_PREFIX: prefix,
  })
  for (const name of ['frank', 'grace', 'heidi']) {
    const created = await http(server.url, 'POST', '/user', { body: { username: name, password: `${name}-password` } })
    expect(created.status).toBe(201)
  }
})

afterAll(async () => {
  await server?.stop()
  proxy?.close()
  redis?.disconnect()
  await redisProcess?.destroy()
  await database?.close()
  await dropDatabase?.()
})

async function commandCalls(name: string): Promise<number> {
  const stats = await redis.info('commandstats')
  const match = new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)
  return Number(match?.[1] ?? 0)
}

describe('Redis outages', () => {
  test('a recently seen cookie is answered from the local cache, without a Redis read', async () => {
    const cookie = await loginVia(server.url, 'frank', 'frank-password')
    expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
    const before = await commandCalls('get')
    for (let i = 0; i < 20; i++) expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
    expect(await commandCalls('get')).toBe(before)
  })

  test('503 while Redis is down, working again within seconds after it restarts', async () => {
    const cookie = await loginVia(server.url, 'frank', 'frank-password')
    expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
    await redisProcess.stop()
    try {
      await msUntilStatus(() => http(server.url, 'GET', '/user/me', { cookie }), 503, 3_000)
      const during = await http(server.url, 'GET', '/user/me', { cookie })
      expect(during.status).toBe(503)
      expect(during.headers.get('retry-after')).toBeTruthy()
      expect(((await during.json()) as { error: { code: string } }).error.code).toBe('service_unavailable')
      const login = await http(server.url, 'POST', '/user/login', { body: { username: 'grace', password: 'x' } })
      expect(login.status).toBe(503)
    } finally {
      await redisProcess.start()
    }
    const recovery = await msUntilStatus(() => http(server.url, 'GET', '/user/me', { cookie }), 200, 10_000)
    expect(recovery).toBeLessThan(10_000)
  }, 30_000)

  test('a session revoked just before Redis dies is not served from the cache after it returns', async () => {
    const doomed = await loginVia(server.url, 'grace', 'grace-password')
    const survivor = await loginVia(server.url, 'heidi', 'heidi-password')
    for (const cookie of [doomed, survivor]) {
      expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
    }
    const ctx = directContext(redis)
    const session = await readSession(ctx.store, 0, await hashToken(tokenOf(doomed)))
    expect(session).toBeDefined()
    if (!session) return
    const event = {
      type: 'session_revoked' as const,
      reason: 'test',
      instance: 'test',
      actorId: 0,
      subjectId: session.userId,
    }
    await deleteSession(ctx.store, session, event, Date.now())
    await redisProcess.stop()
    expect((await http(server.url, 'GET', '/user/me', { cookie: doomed })).status).not.toBe(200)
    await redisProcess.start()
    await msUntilStatus(() => http(server.url, 'GET', '/user/me', { cookie: survivor }), 200, 10_000)
    expect((await http(server.url, 'GET', '/user/me', { cookie: doomed })).status).toBe(401)
  }, 30_000)

  test('a session revoked while the instance is cut off from Redis is not served after it reconnects', async () => {
    const doomed = await loginVia(server.url, 'grace', 'grace-password')
    const survivor = await loginVia(server.url, 'heidi', 'heidi-password')
    for (const cookie of [doomed, survivor]) {
      expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
    }
    proxy.cut()
    try {
      await msUntilStatus(() => http(server.url, 'GET', '/user/me', { cookie: doomed }), 503, 3_000)
      // Redis itself is up: the revocation (and its event) happen while the instance cannot see them.
      const ctx = directContext(redis)
      const session = await readSession(ctx.store, 0, await hashToken(tokenOf(doomed)))
      if (!session) throw new Error('session missing')
      const event = { type: 'logout' as const, instance: 'test', actorId: session.userId, subjectId: session.userId }
      expect(await deleteSession(ctx.store, session, event, Date.now())).toBe(true)
    } finally {
      proxy.restore()
    }
    await msUntilStatus(() => http(server.url, 'GET', '/user/me', { cookie: survivor }), 200, 10_000)
    expect((await http(server.url, 'GET', '/user/me', { cookie: doomed })).status).toBe(401)
  }, 30_000)

  test('a grant committed while Redis is down reaches the live session once Redis is back', async () => {
    const cookie = await loginVia(server.url, 'heidi', 'heidi-password')
    expect((await http(server.url, 'GET', '/audit', { cookie })).status).toBe(403)
    const admin = (await database.sql<{ id: number }[]>`select id from users where username = 'admin'`)[0]
    if (!admin) throw new Error('no admin')
    await redisProcess.stop()
    const offline = createRedis(redisProcess.url)
    offline.on('error', () => {})
    try {
      const result = await changePermission(
        directContext(offline),
        {
          username: 'heidi',
          permission: 'audit:read',
          actor: { id: admin.id, permissions: ['superuser'], ip: '', userAgent: 'test' },
        },
        'grant',
      )
      expect(result).toMatchObject({ changed: true, propagated: false })
      const [pending] = await database.sql<
        { count: number }[]
      >`select count(*)::int from outbox where applied_at is null`
      expect(pending?.count).toBe(1)
    } finally {
      offline.disconnect()
      await redisProcess.start()
    }
    // The instance's outbox relay applies it: the same cookie, no new login.
    await msUntilStatus(() => http(server.url, 'GET', '/audit', { cookie }), 200, 15_000)
    const keys = createStoreKeys(prefix)
    const grants = (await redis.xrange(keys.events(0), '-', '+')).filter(
      ([, fields]) => fields.includes('permission_granted') && fields.includes('audit:read'),
    )
    expect(grants.length).toBe(1)
  }, 40_000)
})

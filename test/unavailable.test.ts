// Redis or PostgreSQL unreachable: 503 with Retry-After and the JSON error shape, never a 200 and
// never a 401 for a cookie that might be valid; and recovery once Redis is back (issue 2 point 11).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type Redis from 'ioredis'
import { createDatabase, type Database } from '../src/db/client'
import { createRedis } from '../src/store'
import {
  ADMIN_PASSWORD,
  call,
  createAppWith,
  createTestEnv,
  databaseUrlFor,
  expectError,
  freePort,
  loginAs,
  type TestEnv,
} from './helpers'

let env: TestEnv
let admin: string
const clients: Redis[] = []
const databases: Database[] = []
let redisServer: Bun.Subprocess | undefined

beforeAll(async () => {
  env = await createTestEnv('unavailable')
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
})
afterAll(async () => {
  for (const client of clients) client.disconnect()
  await Promise.allSettled(databases.map((d) => d.close()))
  if (redisServer && redisServer.exitCode === null) {
    redisServer.kill('SIGKILL')
    await redisServer.exited
  }
  await env.close()
})

function redisClient(url: string): Redis {
  const client = createRedis(url)
  // Connection errors are the point of this file; they reach requests as 503s, not the console.
  client.on('error', () => {})
  clients.push(client)
  return client
}

async function expectUnavailable(response: Response) {
  await expectError(response, 503, 'service_unavailable')
  const retryAfter = Number(response.headers.get('retry-after'))
  expect(Number.isInteger(retryAfter)).toBe(true)
  expect(retryAfter).toBeGreaterThan(0)
  expect(response.headers.getSetCookie()).toHaveLength(0)
}

describe('Redis on a dead port', () => {
  test('a cookie gets 503 with Retry-After, never 401 or 200; login and logout too', async () => {
    const dead = createAppWith(env, {}, { redis: redisClient(`redis://127.0.0.1:${freePort()}`) })
    for (let i = 0; i < 2; i++) await expectUnavailable(await call(dead, 'GET', '/user/me', { cookie: admin }))
    await expectUnavailable(
      await call(dead, 'POST', '/user/assign', { body: { username: 'admin', permission: 'user:read' }, cookie: admin }),
    )
    await expectUnavailable(await call(dead, 'POST', '/user/logout', { cookie: admin }))
    await expectUnavailable(
      await call(dead, 'POST', '/user/login', { body: { username: 'admin', password: ADMIN_PASSWORD } }),
    )
    // Without a well-formed cookie there is nothing to look up: that is a plain 401.
    await expectError(await call(dead, 'GET', '/user/me', { cookie: `${env.config.cookieName}=*` }), 401)
    expect((await call(dead, 'GET', '/healthz')).status).toBe(200)
    await expectUnavailable(await call(dead, 'GET', '/readyz'))
    // The session is untouched: the healthy app still accepts the cookie.
    expect((await call(env.app, 'GET', '/user/me', { cookie: admin })).status).toBe(200)
  })
})

describe('a test-owned redis-server stopped and restarted mid-test', () => {
  const spawnRedis = (port: number) =>
    Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdout: 'ignore',
      stderr: 'ignore',
    })

  /** A port in the range reserved for test-owned Redis servers that nothing listens on. */
  function ownedPort(): number {
    const start = 16400 + Math.floor(Math.random() * 50)
    for (let i = 0; i < 50; i++) {
      const port = 16400 + ((start - 16400 + i) % 50)
      try {
        Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } }).stop(true)
        return port
      } catch {}
    }
    throw new Error('no free port in 16400-16449')
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 5_000): Promise<T> {
    const deadline = Date.now() + ms
    for (;;) {
      const result = await probe().catch(() => undefined)
      if (result !== undefined) return result
      if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`)
      await Bun.sleep(100)
    }
  }

  test('requests get 503 while it is down and work again within seconds of its return', async () => {
    const port = ownedPort()
    redisServer = spawnRedis(port)
    const client = redisClient(`redis://127.0.0.1:${port}`)
    await until('redis-server start', async () => {
      if (client.status === 'wait') await client.connect()
      return (await client.ping()) === 'PONG' ? true : undefined
    })
    const app = createAppWith(env, {}, { redis: client })
    const login = () => call(app, 'POST', '/user/login', { body: { username: 'admin', password: ADMIN_PASSWORD } })

    const first = await login()
    expect(first.status).toBe(200)
    const cookie = `${env.config.cookieName}=${first.headers.getSetCookie()[0]?.split(';')[0]?.split('=')[1]}`
    expect((await call(app, 'GET', '/user/me', { cookie })).status).toBe(200)

    // Stop it: the process we spawned, by its PID.
    redisServer.kill('SIGKILL')
    await redisServer.exited
    for (let i = 0; i < 3; i++) await expectUnavailable(await call(app, 'GET', '/user/me', { cookie }))
    await expectUnavailable(await login())

    // Start it again on the same port; its data is gone (--save ''), so the old cookie is simply
    // unknown once Redis answers, and a new login works.
    redisServer = spawnRedis(port)
    const recovered = await until('recovery', async () => {
      const response = await login()
      return response.status === 200 ? response : undefined
    })
    const fresh = `${env.config.cookieName}=${recovered.headers.getSetCookie()[0]?.split(';')[0]?.split('=')[1]}`
    expect((await call(app, 'GET', '/user/me', { cookie: fresh })).status).toBe(200)
    expect((await call(app, 'GET', '/user/me', { cookie })).status).toBe(401)
  })
})

describe('PostgreSQL unreachable', () => {
  test('login gets 503, never 401; changes that need the database get 503', async () => {
    const url = databaseUrlFor('tessera').replace(/:\d+\//, `:${freePort()}/`)
    const database = createDatabase(url, { max: 1 })
    databases.push(database)
    const dead = createAppWith(env, { DATABASE_URL: url }, { db: database.db })
    for (const password of [ADMIN_PASSWORD, 'wrong-password']) {
      await expectUnavailable(await call(dead, 'POST', '/user/login', { body: { username: 'admin', password } }))
    }
    await expectUnavailable(
      await call(dead, 'POST', '/user', { body: { username: 'rosa', password: 'rosa-password-1' } }),
    )
    await expectUnavailable(
      await call(dead, 'POST', '/user/assign', { body: { username: 'admin', permission: 'user:read' }, cookie: admin }),
    )
    // Sessions live in Redis: an existing cookie still identifies its user.
    expect((await call(dead, 'GET', '/user/me', { cookie: admin })).status).toBe(200)
  })
})

// Two real server processes sharing one Redis and one PostgreSQL, with the local session cache on
// and off: cookies work everywhere, a logout anywhere ends the session everywhere, and permission
// changes bind on the next request on every instance.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { ADMIN_PASSWORD, createTestDatabase, deleteKeys, REDIS_URL } from './helpers'
import { http, loginVia, msUntilStatus, type ServerProcess, startServer } from './processes'

for (const cacheSize of ['100000', '0']) {
  describe(`two instances, SESSION_CACHE_SIZE=${cacheSize}`, () => {
    let a: ServerProcess
    let b: ServerProcess
    let dropDatabase: () => Promise<void>
    const prefix = `test:multi${cacheSize}:${Date.now().toString(36)}:`

    beforeAll(async () => {
      const db = await createTestDatabase(`multi_${cacheSize}`)
      dropDatabase = db.drop
      const vars = { DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, SESSION_CACHE_SIZE: cacheSize }
      // Started together against one database: their boot-time migrations must not collide.
      ;[a, b] = await Promise.all([startServer(vars), startServer(vars)])
      for (const name of ['carol', 'dave', 'erin']) {
        const created = await http(a.url, 'POST', '/user', { body: { username: name, password: `${name}-password` } })
        expect(created.status).toBe(201)
      }
    })

    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()])
      const redis = new Redis(REDIS_URL)
      await deleteKeys(redis, prefix)
      await redis.quit()
      await dropDatabase?.()
    })

    test('a cookie from A works on B', async () => {
      const cookie = await loginVia(a.url, 'carol', 'carol-password')
      const me = await http(b.url, 'GET', '/user/me', { cookie })
      expect(me.status).toBe(200)
      expect(((await me.json()) as { username: string }).username).toBe('carol')
    })

    test('after a logout through A, B answers 401 within 100 ms', async () => {
      for (let trial = 0; trial < 5; trial++) {
        const cookie = await loginVia(a.url, 'dave', 'dave-password')
        // Warm B (and its cache, when on) with the session first.
        expect((await http(b.url, 'GET', '/user/me', { cookie })).status).toBe(200)
        expect((await http(b.url, 'GET', '/user/me', { cookie })).status).toBe(200)
        expect((await http(a.url, 'POST', '/user/logout', { cookie })).status).toBe(200)
        const elapsed = await msUntilStatus(() => http(b.url, 'GET', '/user/me', { cookie }), 401, 1_000)
        expect(elapsed).toBeLessThan(100)
      }
    })

    test('a permission granted through B works at once through A, and a revoke through B binds on A', async () => {
      const admin = await loginVia(b.url, 'admin', ADMIN_PASSWORD)
      const erin = await loginVia(a.url, 'erin', 'erin-password')
      expect((await http(a.url, 'GET', '/user/me', { cookie: erin })).status).toBe(200)
      expect((await http(a.url, 'GET', '/audit', { cookie: erin })).status).toBe(403)

      const grant = { username: 'erin', permission: 'audit:read' }
      const granted = await http(b.url, 'POST', '/user/assign', { body: grant, cookie: admin })
      expect(granted.status).toBe(200)
      expect((await http(a.url, 'GET', '/audit', { cookie: erin })).status).toBe(200)
      await msUntilStatus(
        async () => {
          const me = await http(a.url, 'GET', '/user/me', { cookie: erin })
          const { permissions } = (await me.clone().json()) as { permissions: string[] }
          return new Response(null, { status: permissions.includes('audit:read') ? 204 : 409 })
        },
        204,
        100,
      )

      const revoked = await http(b.url, 'POST', '/user/unassign', { body: grant, cookie: admin })
      expect(revoked.status).toBe(200)
      expect((await http(a.url, 'GET', '/audit', { cookie: erin })).status).toBe(403)
    })
  })
}

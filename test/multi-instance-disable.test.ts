// Disabling a user through one instance ends that user's sessions as seen by another: two apps in
// one process over the same Redis and database, and two real server processes with their caches.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ADMIN_PASSWORD, call, createAppWith, createTestEnv, loginAs, REDIS_URL, type TestEnv } from './helpers'
import { http, loginVia, msUntilStatus, type ServerProcess, startServer } from './processes'

let env: TestEnv
const PASSWORD = 'correct horse battery'

beforeAll(async () => {
  env = await createTestEnv('multi_disable')
})
afterAll(async () => {
  await env.close()
})

describe('two apps in one process', () => {
  test('disabled through A: B refuses the cookie, the gateway endpoint too, and the login', async () => {
    const a = env.app
    const b = createAppWith(env, { INSTANCE_ID: 'instance-b' })
    const registered = await call(a, 'POST', '/user', { body: { username: 'carol', password: PASSWORD } })
    const { id } = (await registered.json()) as { id: number }
    const login = await call(b, 'POST', '/user/login', { body: { username: 'carol', password: PASSWORD } })
    const cookie = login.headers.getSetCookie()[0]?.split(';')[0] ?? ''
    expect((await call(b, 'GET', '/user/me', { cookie })).status).toBe(200)
    expect((await call(b, 'GET', '/auth/verify', { cookie })).status).toBe(200)

    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    expect((await call(a, 'POST', `/admin/users/${id}/disable`, { cookie: admin })).status).toBe(200)

    expect((await call(b, 'GET', '/user/me', { cookie })).status).toBe(401)
    expect((await call(b, 'GET', '/auth/verify', { cookie })).status).toBe(401)
    expect((await call(b, 'POST', '/user/login', { body: { username: 'carol', password: PASSWORD } })).status).toBe(401)
  })
})

describe('two server processes, each with its local session cache', () => {
  let serverA: ServerProcess
  let serverB: ServerProcess
  beforeAll(async () => {
    const vars = { DATABASE_URL: env.databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: env.prefix }
    ;[serverA, serverB] = await Promise.all([
      startServer({ ...vars, INSTANCE_ID: 'proc-a' }),
      startServer({ ...vars, INSTANCE_ID: 'proc-b' }),
    ])
  })
  afterAll(async () => {
    await Promise.all([serverA?.stop(), serverB?.stop()])
  })

  test('disabled through A: B answers 401 within a second, having served the cookie from its cache', async () => {
    const registered = await http(serverA.url, 'POST', '/user', { body: { username: 'dave', password: PASSWORD } })
    expect(registered.status).toBe(201)
    const { id } = (await registered.json()) as { id: number }
    const cookie = await loginVia(serverB.url, 'dave', PASSWORD)
    // Twice, so the second one is a cache hit on B.
    for (let i = 0; i < 2; i++) expect((await http(serverB.url, 'GET', '/user/me', { cookie })).status).toBe(200)

    const admin = await loginVia(serverA.url, 'admin', ADMIN_PASSWORD)
    const disabled = await http(serverA.url, 'POST', `/admin/users/${id}/disable`, { cookie: admin })
    expect(disabled.status).toBe(200)
    expect(((await disabled.json()) as { propagated: boolean }).propagated).toBe(true)

    const ms = await msUntilStatus(() => http(serverB.url, 'GET', '/user/me', { cookie }), 401, 1_000)
    expect(ms).toBeLessThan(1_000)
    expect((await http(serverB.url, 'GET', '/auth/verify', { cookie })).status).toBe(401)
    expect((await http(serverB.url, 'GET', '/sessions', { cookie })).status).toBe(401)
  })
})

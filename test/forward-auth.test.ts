// /auth/verify in-process: the answers gateways rely on, any method, no cookies, no CSRF refusal,
// and one Redis read without PostgreSQL.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createDatabase, type Database } from '../src/db/client'
import { PERMISSION_NAMES } from '../src/modules/permissions/catalogue'
import { createRedis } from '../src/store'
import {
  ADMIN_PASSWORD,
  call,
  createAppWith,
  createTestEnv,
  expectError,
  freePort,
  loginAs,
  REDIS_URL,
  registerUser,
  type TestEnv,
} from './helpers'

let env: TestEnv
let admin: string
let alice: string
let aliceId: number
const PASSWORD = 'correct horse battery'

beforeAll(async () => {
  env = await createTestEnv('forward_auth')
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
  aliceId = (await registerUser(env, 'alice', PASSWORD)).id
  const granted = await call(env.app, 'POST', '/user/assign', {
    cookie: admin,
    body: { username: 'alice', permission: 'user:read' },
  })
  expect(granted.status).toBe(200)
  alice = await loginAs(env, 'alice', PASSWORD)
})
afterAll(async () => {
  await env.close()
})

const verify = (method: string, cookie?: string, query = '', headers: Record<string, string> = {}) =>
  call(env.app, method, `/auth/verify${query}`, { cookie, headers })

async function expectEmpty(response: Response, status: number) {
  expect(response.status).toBe(status)
  expect(await response.text()).toBe('')
  expect(response.headers.getSetCookie()).toEqual([])
  if (status !== 200) expect(response.headers.get('x-user-id')).toBeNull()
}

describe('/auth/verify', () => {
  test('401 with an empty body without a session, or with a malformed or unknown cookie', async () => {
    await expectEmpty(await verify('GET'), 401)
    await expectEmpty(await verify('GET', `${env.config.cookieName}=*`), 401)
    await expectEmpty(await verify('GET', `${env.config.cookieName}=${'A'.repeat(43)}`), 401)
  })

  test('200 with the identity headers for a valid session; empty body; no Set-Cookie', async () => {
    const response = await verify('GET', alice)
    await expectEmpty(response, 200)
    expect(response.headers.get('x-user-id')).toBe(String(aliceId))
    expect(response.headers.get('x-user-name')).toBe('alice')
    expect(response.headers.get('x-user-permissions')).toBe('user:read')
    expect(response.headers.get('cache-control')).toBe('no-store')
  })

  test('403 when ?permission= names one the user lacks; all of a list are required', async () => {
    await expectEmpty(await verify('GET', alice, '?permission=user:read'), 200)
    await expectEmpty(await verify('GET', alice, '?permission=user:manage'), 403)
    await expectEmpty(await verify('GET', alice, '?permission=user:read,session:revoke'), 403)
    // Repeated, every one counts, in either order: not only the last.
    await expectEmpty(await verify('GET', alice, '?permission=user:manage&permission=user:read'), 403)
    await expectEmpty(await verify('GET', alice, '?permission=user:read&permission=user:manage'), 403)
    await expectEmpty(await verify('GET', alice, '?permission=user:read&permission=user:read'), 200)
    // No session is still 401, whatever permission is asked for.
    await expectEmpty(await verify('GET', undefined, '?permission=user:read'), 401)
  })

  test('a superuser passes any permission and is listed with all of them', async () => {
    const response = await verify('GET', admin, '?permission=user:manage,audit:read')
    await expectEmpty(response, 200)
    expect(response.headers.get('x-user-permissions')?.split(',').sort()).toEqual([...PERMISSION_NAMES].sort())
  })

  test('422 for an unknown permission name: a gateway typo fails loudly', async () => {
    await expectError(await verify('GET', alice, '?permission=user:raed'), 422, 'unknown_permission')
  })

  test.each(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])('answers %s', async (method) => {
    const ok = await verify(method, alice)
    expect(ok.status).toBe(200)
    expect(ok.headers.get('x-user-name')).toBe('alice')
    expect((await verify(method)).status).toBe(401)
    expect((await verify(method, alice, '?permission=user:manage')).status).toBe(403)
  })

  test('a forwarded cross-origin POST is verified, not refused by the CSRF check meant for Tessera itself', async () => {
    const crossSite = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }
    const response = await verify('POST', alice, '', crossSite)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-user-name')).toBe('alice')
    // The exemption is this exact path: everything else still gets the check.
    await expectError(await call(env.app, 'POST', '/user/logout', { cookie: alice, headers: crossSite }), 403)
    await expectError(await call(env.app, 'POST', '/auth/verifyx', { cookie: alice, headers: crossSite }), 403)
  })

  test('Envoy style: the original method and path appended to /auth/verify, the permission in a header', async () => {
    const envoy = (cookie: string | undefined, permission?: string) =>
      call(env.app, 'POST', '/auth/verify/app/orders?page=2', {
        cookie,
        headers: {
          origin: 'https://shop.example',
          'sec-fetch-site': 'cross-site',
          ...(permission ? { 'x-tessera-permission': permission } : {}),
        },
      })
    const ok = await envoy(alice, 'user:read')
    await expectEmpty(ok, 200)
    expect(ok.headers.get('x-user-name')).toBe('alice')
    await expectEmpty(await envoy(alice, 'user:manage'), 403)
    await expectEmpty(await envoy(undefined, 'user:read'), 401)
    await expectError(await envoy(alice, 'nonsense'), 422, 'unknown_permission')
  })

  test('query and header requirements add up; neither can loosen the other', async () => {
    await expectEmpty(
      await verify('GET', alice, '?permission=user:read', { 'x-tessera-permission': 'user:manage' }),
      403,
    )
    await expectEmpty(
      await verify('GET', alice, '?permission=user:manage', { 'x-tessera-permission': 'user:read' }),
      403,
    )
    await expectEmpty(await verify('GET', alice, '?permission=user:read', { 'x-tessera-permission': 'user:read' }), 200)
  })

  test('a forwarded body (form, oversized, not JSON) is ignored, never parsed or refused', async () => {
    const form = await call(env.app, 'POST', '/auth/verify', {
      cookie: alice,
      raw: 'a=b&c=d',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(form.status).toBe(200)
    const big = await call(env.app, 'PUT', '/auth/verify', {
      cookie: alice,
      raw: 'x'.repeat(100_000),
      headers: { 'content-type': 'application/octet-stream' },
    })
    expect(big.status).toBe(200)
  })

  test('logout ends it: the same cookie gets 401', async () => {
    const cookie = await loginAs(env, 'alice', PASSWORD)
    expect((await verify('GET', cookie)).status).toBe(200)
    expect((await call(env.app, 'POST', '/user/logout', { cookie })).status).toBe(200)
    await expectEmpty(await verify('GET', cookie), 401)
  })

  test('a disabled user gets 401 at once', async () => {
    const { id } = await registerUser(env, 'to-disable', PASSWORD)
    const cookie = await loginAs(env, 'to-disable', PASSWORD)
    expect((await verify('GET', cookie)).status).toBe(200)
    expect((await call(env.app, 'POST', `/admin/users/${id}/disable`, { cookie: admin })).status).toBe(200)
    await expectEmpty(await verify('GET', cookie), 401)
  })
})

describe('/auth/verify is cheap', () => {
  let deadDb: Database
  beforeAll(() => {
    // A PostgreSQL nobody listens on: verification must not need it.
    deadDb = createDatabase(`postgres://postgres@127.0.0.1:${freePort()}/none`, { max: 1 })
  })
  afterAll(async () => {
    await deadDb.close()
  })

  test('one Redis command per verification, and no PostgreSQL', async () => {
    const redis = createRedis(REDIS_URL)
    const commands: string[] = []
    const send = redis.sendCommand.bind(redis)
    redis.sendCommand = ((command: { name: string }, stream?: unknown) => {
      commands.push(command.name)
      return send(command as never, stream as never)
    }) as typeof redis.sendCommand
    try {
      await redis.connect()
      await redis.ping()
      const app = createAppWith(env, {}, { redis, db: deadDb.db })
      const cookie = await loginAs(env, 'alice', PASSWORD)
      commands.length = 0

      const plain = await call(app, 'GET', '/auth/verify', { cookie })
      expect(plain.status).toBe(200)
      expect(commands).toEqual(['mget'])
      commands.length = 0
      const withPermission = await call(app, 'GET', '/auth/verify?permission=user:read', { cookie })
      expect(withPermission.status).toBe(200)
      expect(commands).toEqual(['mget'])
      // Verifications arriving together share that one command (store/sessions.ts, readRecord).
      const others = ['bob', 'carol']
      for (const name of others) await registerUser(env, name, PASSWORD)
      const cookies = [cookie, ...(await Promise.all(others.map((name) => loginAs(env, name, PASSWORD))))]
      commands.length = 0
      const together = await Promise.all(
        Array.from({ length: 12 }, (_, i) => call(app, 'GET', '/auth/verify', { cookie: cookies[i % cookies.length] })),
      )
      expect(together.map((response) => response.status)).toEqual(Array(12).fill(200))
      expect(new Set(together.map((response) => response.headers.get('x-user-name')))).toEqual(
        new Set(['alice', 'bob', 'carol']),
      )
      expect(commands).toEqual(['mget'])
      // The same app does need PostgreSQL elsewhere: the dead database is really dead.
      expect((await call(app, 'GET', '/admin/users', { cookie })).status).toBe(503)
    } finally {
      redis.disconnect()
    }
  })
})

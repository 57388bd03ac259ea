// CSRF: state-changing requests naming a foreign Origin (or Sec-Fetch-Site) are refused; safe
// methods never are; login from a cross-site HTML form is impossible (ASVS 3.5.1-3.5.3).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import {
  ADMIN_PASSWORD,
  call,
  createAppWith,
  createTestEnv,
  expectError,
  loginAs,
  registerUser,
  type TestEnv,
} from './helpers'

let env: TestEnv
let admin: string
beforeAll(async () => {
  env = await createTestEnv('csrf')
  await registerUser(env, 'lena', 'lena-password-1')
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
})
afterAll(async () => {
  await env.close()
})

const credentials = { username: 'lena', password: 'lena-password-1' }
const login = (headers: Record<string, string>, app = env.app) =>
  call(app, 'POST', '/user/login', { body: credentials, headers })

describe('Origin check on state-changing requests', () => {
  test('a foreign Origin gets 403 JSON on login, logout, register and assign', async () => {
    const evil = { origin: 'https://evil.example' }
    await expectError(await login(evil), 403, 'cross_origin_request')
    await expectError(
      await call(env.app, 'POST', '/user', {
        body: { username: 'mallory', password: 'mallory-password' },
        headers: evil,
      }),
      403,
    )
    await expectError(
      await call(env.app, 'POST', '/user/assign', {
        body: { username: 'lena', permission: 'user:read' },
        cookie: admin,
        headers: evil,
      }),
      403,
    )
    await expectError(await call(env.app, 'POST', '/user/logout', { cookie: admin, headers: evil }), 403)
    // None of it happened: the session lives, the user was not created, the grant not made.
    const me = await call(env.app, 'GET', '/user/me', { cookie: admin })
    expect(me.status).toBe(200)
    expect(
      (await call(env.app, 'POST', '/user', { body: { username: 'mallory', password: 'mallory-password' } })).status,
    ).toBe(201)
    const lena = await loginAs(env, 'lena', 'lena-password-1')
    const lenaMe = (await (await call(env.app, 'GET', '/user/me', { cookie: lena })).json()) as {
      permissions: string[]
    }
    expect(lenaMe.permissions).toEqual([])
  })

  test('look-alike and opaque origins are foreign too', async () => {
    for (const origin of ['null', 'http://localhost.evil.example', 'https://localhost', 'http://localhost:8080']) {
      await expectError(await login({ origin }), 403, 'cross_origin_request')
    }
  })

  test('the same origin is allowed', async () => {
    expect((await login({ origin: 'http://localhost' })).status).toBe(200)
  })

  test('TRUSTED_ORIGINS allows exactly the origins it lists', async () => {
    const trusting = createAppWith(env, { TRUSTED_ORIGINS: 'https://app.example' })
    expect((await login({ origin: 'https://app.example' }, trusting)).status).toBe(200)
    expect((await login({ origin: 'http://localhost' }, trusting)).status).toBe(200)
    await expectError(await login({ origin: 'https://evil.example' }, trusting), 403)
    await expectError(await login({ origin: 'https://app.example.evil.example' }, trusting), 403)
    // The default app does not trust it.
    await expectError(await login({ origin: 'https://app.example' }), 403)
  })

  test('Sec-Fetch-Site: cross-site (or same-site) without Origin is refused; same-origin and none pass', async () => {
    await expectError(await login({ 'sec-fetch-site': 'cross-site' }), 403, 'cross_origin_request')
    await expectError(await login({ 'sec-fetch-site': 'same-site' }), 403, 'cross_origin_request')
    expect((await login({ 'sec-fetch-site': 'same-origin' })).status).toBe(200)
    expect((await login({ 'sec-fetch-site': 'none' })).status).toBe(200)
  })

  test('no Origin and no Sec-Fetch-Site (curl, server-to-server) is allowed', async () => {
    expect((await login({})).status).toBe(200)
  })
})

describe('safe methods', () => {
  test('GET is never refused for its origin', async () => {
    const evil = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }
    expect((await call(env.app, 'GET', '/user/me', { cookie: admin, headers: evil })).status).toBe(200)
    expect((await call(env.app, 'GET', '/permissions', { headers: evil })).status).toBe(200)
    expect((await call(env.app, 'GET', '/healthz', { headers: evil })).status).toBe(200)
  })

  test('GET on a state-changing path changes nothing', async () => {
    const response = await call(env.app, 'GET', '/user/logout', { cookie: admin })
    expect(response.status).toBeGreaterThanOrEqual(400)
    expect(response.status).toBeLessThan(500)
    expect((await call(env.app, 'GET', '/user/me', { cookie: admin })).status).toBe(200)
  })
})

describe('login CSRF through an HTML form', () => {
  const form = 'username=lena&password=lena-password-1'

  test('a cross-site form post is refused', async () => {
    const response = await call(env.app, 'POST', '/user/login', {
      raw: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
    })
    expect([403, 415]).toContain(response.status)
    expect(response.headers.getSetCookie()).toHaveLength(0)
  })

  test('a form post without Origin (old browsers) is refused as 415', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain']) {
      const response = await call(env.app, 'POST', '/user/login', { raw: form, headers: { 'content-type': type } })
      await expectError(response, 415, 'unsupported_media_type')
      expect(response.headers.getSetCookie()).toHaveLength(0)
    }
  })
})

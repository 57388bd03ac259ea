// Denied authorization decisions are counted (401 and 403) and 403s are recorded in the event
// stream with who, what and where; rate-limited logins are recorded too.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { decodeEvent } from '../src/store'
import { call, createTestEnv, loginAs, registerUser, streamEntries, type TestEnv } from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('denied', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '2' })
  await registerUser(env, 'judy', 'judy-password-1')
})
afterAll(async () => {
  await env.close()
})

async function events() {
  const entries = await streamEntries(env)
  return entries.map(([, fields]) => decodeEvent(fields))
}

describe('denied decisions', () => {
  test('401s and 403s are counted in /metrics; a 403 is an access_denied event', async () => {
    const judy = await loginAs(env, 'judy', 'judy-password-1')
    expect((await call(env.app, 'GET', '/user/me')).status).toBe(401)
    const forbidden = await call(env.app, 'POST', '/user/assign', {
      body: { username: 'judy', permission: 'audit:read' },
      cookie: judy,
    })
    expect(forbidden.status).toBe(403)

    const metrics = await (await call(env.app, 'GET', '/metrics')).text()
    expect(metrics).toMatch(/tessera_auth_denied_total\{reason="unauthenticated"\} [1-9]/)
    expect(metrics).toMatch(/tessera_auth_denied_total\{reason="forbidden"\} 1/)

    const denied = (await events()).find((e) => e?.type === 'access_denied')
    expect(denied).toMatchObject({ type: 'access_denied', permission: 'user:assign', path: '/user/assign' })
    expect(denied?.actorId).toBeGreaterThan(0)
  })

  test('a rate-limited login attempt is recorded as login_failed with reason rate_limited', async () => {
    for (let i = 0; i < 2; i++) {
      expect(
        (await call(env.app, 'POST', '/user/login', { body: { username: 'judy', password: 'nope' } })).status,
      ).toBe(401)
    }
    expect((await call(env.app, 'POST', '/user/login', { body: { username: 'judy', password: 'nope' } })).status).toBe(
      429,
    )
    const limited = (await events()).filter((e) => e?.type === 'login_failed' && e.reason === 'rate_limited')
    expect(limited.length).toBe(1)
    const metrics = await (await call(env.app, 'GET', '/metrics')).text()
    expect(metrics).toContain('tessera_logins_total{outcome="rate_limited"} 1')
  })
})

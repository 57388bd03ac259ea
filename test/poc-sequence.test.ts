// The proof of concept's six requests, in order, must keep answering as they did.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ADMIN_PASSWORD, call, createTestEnv, loginAs, type TestEnv } from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('poc')
})
afterAll(async () => {
  await env.close()
})

describe('proof of concept sequence', () => {
  test('answers 401, 201, 200, 403, 200, 200 and the grant reaches the live session', async () => {
    const grant = { username: 'bob', permission: 'user:assign' }

    const step1 = await call(env.app, 'POST', '/user/assign', { body: grant })
    expect(step1.status).toBe(401)

    const step2 = await call(env.app, 'POST', '/user', { body: { username: 'bob', password: 'bob-password-1' } })
    expect(step2.status).toBe(201)

    const bob = await loginAs(env, 'bob', 'bob-password-1')
    const keys = await env.redis.keys(`${env.prefix}*`)
    expect(keys.some((k) => k.includes(':s:'))).toBe(true)

    const step4 = await call(env.app, 'POST', '/user/assign', { body: grant, cookie: bob })
    expect(step4.status).toBe(403)

    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    const step6 = await call(env.app, 'POST', '/user/assign', { body: grant, cookie: admin })
    expect(step6.status).toBe(200)

    // Bob's existing cookie now carries the permission, with no new login.
    const me = await call(env.app, 'GET', '/user/me', { cookie: bob })
    expect(((await me.json()) as { permissions: string[] }).permissions).toContain('user:assign')
    const again = await call(env.app, 'POST', '/user/assign', {
      body: { username: 'bob', permission: 'user:assign' },
      cookie: bob,
    })
    expect(again.status).toBe(200)

    const revoke = await call(env.app, 'POST', '/user/unassign', { body: grant, cookie: admin })
    expect(revoke.status).toBe(200)
    const after = await call(env.app, 'POST', '/user/assign', { body: grant, cookie: bob })
    expect(after.status).toBe(403)
  })
})

// The concurrent-session policy: at most SESSION_MAX_PER_USER live sessions per user; a login
// beyond that ends the oldest, atomically, and announces it.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { decodeEvent } from '../src/store'
import { call, createTestEnv, loginAs, registerUser, streamEntries, type TestEnv } from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('session_limit', { SESSION_MAX_PER_USER: '3' })
  await registerUser(env, 'kate', 'kate-password-1')
  await registerUser(env, 'liam', 'liam-password-1')
})
afterAll(async () => {
  await env.close()
})

const alive = async (cookie: string) => (await call(env.app, 'GET', '/user/me', { cookie })).status === 200

describe('sessions per user', () => {
  test('the fourth login ends the oldest session, with a session_limit event; other users are untouched', async () => {
    const liam = await loginAs(env, 'liam', 'liam-password-1')
    const cookies: string[] = []
    for (let i = 0; i < 3; i++) {
      cookies.push(await loginAs(env, 'kate', 'kate-password-1'))
      env.clock.advance(1_000)
    }
    for (const cookie of cookies) expect(await alive(cookie)).toBe(true)

    const fourth = await loginAs(env, 'kate', 'kate-password-1')
    expect(await alive(cookies[0] as string)).toBe(false)
    for (const cookie of [...cookies.slice(1), fourth, liam]) expect(await alive(cookie)).toBe(true)

    const listed = (await (await call(env.app, 'GET', '/sessions', { cookie: fourth })).json()) as {
      sessions: unknown[]
    }
    expect(listed.sessions).toHaveLength(3)
    const events = (await streamEntries(env)).map(([, f]) => decodeEvent(f))
    const limited = events.filter((e) => e?.type === 'session_revoked' && e.reason === 'session_limit')
    expect(limited).toHaveLength(1)
    expect(limited[0]?.sessionHash?.split(',')).toHaveLength(1)
  })
})

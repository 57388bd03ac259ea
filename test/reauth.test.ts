// Step-up re-authentication (checklist 7.5.1-7.5.3): sensitive routes need a password proven within
// REAUTH_WINDOW, counted from the last proof (login, POST /user/reauth, a password change), not from
// creation or activity; a stale session gets 401 reauth_required and stays logged in.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { decodeEvent } from '../src/store'
import {
  ADMIN_PASSWORD,
  call,
  createAppWith,
  createTestEnv,
  expectError,
  loginAs,
  registerUser,
  sessionTokenFrom,
  streamEntries,
  type TestEnv,
} from './helpers'

let env: TestEnv
beforeAll(async () => {
  // Sessions outlive the 10-minute window by far, so staleness is never mistaken for expiry.
  env = await createTestEnv('reauth', { SESSION_IDLE_TIMEOUT: '2h', LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' })
  for (const name of ['target-a', 'target-b', 'target-c', 'plain']) await registerUser(env, name, `${name}-password`)
})
afterAll(() => env.close())

const MINUTE = 60_000
const grant = (cookie: string, username: string, app = env.app) =>
  call(app, 'POST', '/user/assign', { cookie, body: { username, permission: 'audit:read' } })
const reauth = (cookie: string, password: string, app = env.app) =>
  call(app, 'POST', '/user/reauth', { cookie, body: { password } })

describe('a sensitive route', () => {
  test('works right after login, and answers 401 reauth_required once the proof is older than the window', async () => {
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    expect((await grant(admin, 'target-a')).status).toBe(200)
    env.clock.advance(11 * MINUTE)
    await expectError(await grant(admin, 'target-a'), 401, 'reauth_required')
    await expectError(await call(env.app, 'DELETE', '/admin/sessions', { cookie: admin }), 401, 'reauth_required')
    await expectError(await call(env.app, 'POST', '/admin/users/2/disable', { cookie: admin }), 401, 'reauth_required')
    // Not a logout: the session still works where no recent proof is needed.
    expect((await call(env.app, 'GET', '/user/me', { cookie: admin })).status).toBe(200)
    expect((await call(env.app, 'GET', '/admin/users', { cookie: admin })).status).toBe(200)
  })

  test('counts from the last proof of password, not from activity', async () => {
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    for (let i = 0; i < 4; i++) {
      env.clock.advance(3 * MINUTE)
      expect((await call(env.app, 'GET', '/user/me', { cookie: admin })).status).toBe(200)
    }
    await expectError(await grant(admin, 'target-b'), 401, 'reauth_required')
  })

  test('a session lacking the permission gets 403, not an invitation to re-authenticate', async () => {
    const plain = await loginAs(env, 'plain', 'plain-password')
    env.clock.advance(11 * MINUTE)
    await expectError(await grant(plain, 'target-a'), 403, 'forbidden')
  })
})

describe('POST /user/reauth', () => {
  test('refreshes the proof without a new token, and is announced', async () => {
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    env.clock.advance(11 * MINUTE)
    await expectError(await grant(admin, 'target-c'), 401, 'reauth_required')
    const response = await reauth(admin, ADMIN_PASSWORD)
    expect(response.status).toBe(200)
    expect(response.headers.getSetCookie()).toEqual([])
    const { authenticatedAt } = (await response.json()) as { authenticatedAt: string }
    expect(Date.parse(authenticatedAt)).toBe(env.clock.now)
    expect((await grant(admin, 'target-c')).status).toBe(200)
    const me = (await (await call(env.app, 'GET', '/user/me', { cookie: admin })).json()) as {
      session: { authenticatedAt: string }
    }
    expect(me.session.authenticatedAt).toBe(authenticatedAt)
    const events = (await streamEntries(env)).map(([, f]) => decodeEvent(f))
    expect(events.some((e) => e?.type === 'session_reauthenticated' && e.subjectId === 1)).toBe(true)
  })

  test('a re-authentication through one instance counts at once on another', async () => {
    const other = createAppWith(env, { SESSION_IDLE_TIMEOUT: '2h' })
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    env.clock.advance(11 * MINUTE)
    await expectError(await grant(admin, 'target-c', other), 401, 'reauth_required')
    expect((await reauth(admin, ADMIN_PASSWORD)).status).toBe(200)
    expect((await grant(admin, 'target-c', other)).status).toBe(200)
  })

  test('a wrong password is 403 wrong_password, counted and limited like a login', async () => {
    await registerUser(env, 'guesser', 'guesser-password')
    const guesser = await loginAs(env, 'guesser', 'guesser-password')
    for (let i = 0; i < 3; i++) await expectError(await reauth(guesser, `wrong-${i}`), 403, 'wrong_password')
    await expectError(await reauth(guesser, 'guesser-password'), 429, 'too_many_attempts')
    // The same counters as login: the account is limited there too. And still logged in.
    await expectError(
      await call(env.app, 'POST', '/user/login', { body: { username: 'guesser', password: 'guesser-password' } }),
      429,
    )
    expect((await call(env.app, 'GET', '/user/me', { cookie: guesser })).status).toBe(200)
  })

  test('needs a session', async () => {
    await expectError(await call(env.app, 'POST', '/user/reauth', { body: { password: 'x' } }), 401, 'unauthenticated')
  })
})

describe('other proofs and settings', () => {
  test('a password change counts as a proof for the rotated session', async () => {
    await registerUser(env, 'changer', 'changer-password')
    const cookie = await loginAs(env, 'changer', 'changer-password')
    env.clock.advance(30 * MINUTE)
    const changed = await call(env.app, 'POST', '/user/password', {
      cookie,
      body: { currentPassword: 'changer-password', newPassword: 'changer-password-2' },
    })
    expect(changed.status).toBe(200)
    const rotated = `${env.config.cookieName}=${sessionTokenFrom(changed, env.config.cookieName)}`
    const me = (await (await call(env.app, 'GET', '/user/me', { cookie: rotated })).json()) as {
      session: { authenticatedAt: string; createdAt: string }
    }
    expect(Date.parse(me.session.authenticatedAt)).toBe(env.clock.now)
    expect(Date.parse(me.session.createdAt)).toBeLessThan(env.clock.now)
  })

  test('REAUTH_WINDOW sets the window', async () => {
    const lenient = createAppWith(env, { REAUTH_WINDOW: '1h', SESSION_IDLE_TIMEOUT: '2h' })
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    env.clock.advance(30 * MINUTE)
    expect((await grant(admin, 'target-a', lenient)).status).toBe(200)
    await expectError(await grant(admin, 'target-a'), 401, 'reauth_required')
  })
})

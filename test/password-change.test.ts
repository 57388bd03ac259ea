// POST /user/password, and the argon2 hash upgrade at login.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { hash } from '@node-rs/argon2'
import { eq } from 'drizzle-orm'
import { users } from '../src/db/schema'
import { upgradePasswordHash } from '../src/modules/auth/service'
import { decodeEvent } from '../src/store'
import {
  call,
  createTestEnv,
  expectError,
  loginAs,
  registerUser,
  sessionTokenFrom,
  streamEntries,
  type TestEnv,
  tokenOf,
} from './helpers'
import { waitFor } from './processes'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('password_change', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' })
})
afterAll(async () => {
  await env.close()
})

const OLD = 'old password one'
const NEW = 'new password two'

const alive = async (cookie: string) => (await call(env.app, 'GET', '/user/me', { cookie })).status === 200
const canLogin = async (username: string, password: string) =>
  (await call(env.app, 'POST', '/user/login', { body: { username, password } })).status === 200

async function change(cookie: string, body: Record<string, unknown>) {
  return call(env.app, 'POST', '/user/password', { cookie, body })
}

async function storedHash(username: string): Promise<string> {
  const [row] = await env.database.db
    .select({ passwordHash: users.passwordHash })
    .from(users)
    .where(eq(users.username, username))
  if (!row) throw new Error(`no user ${username}`)
  return row.passwordHash
}

describe('POST /user/password', () => {
  test('401 without a session', async () => {
    await expectError(
      await call(env.app, 'POST', '/user/password', { body: { currentPassword: OLD, newPassword: NEW } }),
      401,
    )
  })

  test('403 for a wrong current password; nothing changes', async () => {
    await registerUser(env, 'wrong-current', OLD)
    const cookie = await loginAs(env, 'wrong-current', OLD)
    const before = await storedHash('wrong-current')
    const body = await expectError(
      await change(cookie, { currentPassword: 'not the password', newPassword: NEW }),
      403,
      'wrong_password',
    )
    expect(body.error.field).toBe('currentPassword')
    expect(await storedHash('wrong-current')).toBe(before)
    expect(await alive(cookie)).toBe(true)
  })

  test('wrong current passwords count towards the login limit (429 with Retry-After)', async () => {
    await registerUser(env, 'guessed', OLD)
    const cookie = await loginAs(env, 'guessed', OLD)
    for (let i = 0; i < 3; i++) {
      await expectError(await change(cookie, { currentPassword: `guess ${i}`, newPassword: NEW }), 403)
    }
    const limited = await change(cookie, { currentPassword: OLD, newPassword: NEW })
    await expectError(limited, 429, 'too_many_attempts')
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await canLogin('guessed', NEW)).toBe(false)
  })

  test('422 for a new password that breaks the rules or an unknown field', async () => {
    await registerUser(env, 'rules', OLD)
    const cookie = await loginAs(env, 'rules', OLD)
    const short = await expectError(await change(cookie, { currentPassword: OLD, newPassword: 'short' }), 422)
    expect(short.error.field).toBe('newPassword')
    await expectError(await change(cookie, { currentPassword: OLD, newPassword: NEW, extra: 1 }), 422)
  })

  test('changes the password, ends the other sessions, rotates the current one', async () => {
    await registerUser(env, 'changer', OLD)
    const current = await loginAs(env, 'changer', OLD)
    const other = await loginAs(env, 'changer', OLD)
    const me = (await (await call(env.app, 'GET', '/user/me', { cookie: current })).json()) as {
      id: number
      session: { id: string }
    }

    const response = await change(current, { currentPassword: OLD, newPassword: NEW })
    expect(response.status).toBe(200)
    const body = (await response.json()) as {
      otherSessionsEnded: boolean
      propagated: boolean
      session: { id: string }
    }
    expect(body.otherSessionsEnded).toBe(true)
    expect(body.propagated).toBe(true)
    // A new token, so a new public id (it derives from the token's hash); same absolute expiry.
    expect(body.session.id).not.toBe(me.session.id)
    expect(response.headers.get('cache-control')).toBe('no-store')

    const token = sessionTokenFrom(response, env.config.cookieName)
    expect(token).toBeDefined()
    expect(token).not.toBe(tokenOf(current))
    const rotated = `${env.config.cookieName}=${token}`
    expect(await alive(rotated)).toBe(true)
    expect(await alive(current)).toBe(false)
    expect(await alive(other)).toBe(false)
    // The rotated session is the only one left, listed under the id the answer gave, and current.
    const listed = (await (await call(env.app, 'GET', '/sessions', { cookie: rotated })).json()) as {
      sessions: { id: string; current: boolean }[]
    }
    expect(listed.sessions).toEqual([expect.objectContaining({ id: body.session.id, current: true })])

    expect(await canLogin('changer', OLD)).toBe(false)
    expect(await canLogin('changer', NEW)).toBe(true)

    const types = (await streamEntries(env))
      .map(([, fields]) => decodeEvent(fields))
      .filter((e) => e?.subjectId === me.id)
      .map((e) => `${e?.type}:${e && 'reason' in e ? e.reason : ''}`)
    expect(types).toContain('password_changed:')
    expect(types).toContain('user_sessions_revoked:password_changed')
    expect(types).toContain('session_revoked:rotated_password_changed')
  })

  test('keepOtherSessions leaves the other sessions alive but still rotates this one', async () => {
    await registerUser(env, 'keeper', OLD)
    const current = await loginAs(env, 'keeper', OLD)
    const other = await loginAs(env, 'keeper', OLD)
    const response = await change(current, { currentPassword: OLD, newPassword: NEW, keepOtherSessions: true })
    expect(response.status).toBe(200)
    expect(((await response.json()) as { otherSessionsEnded: boolean }).otherSessionsEnded).toBe(false)
    expect(await alive(other)).toBe(true)
    expect(await alive(current)).toBe(false)
    expect(await alive(`${env.config.cookieName}=${sessionTokenFrom(response, env.config.cookieName)}`)).toBe(true)
  })

  test('a cross-origin password change is refused by the CSRF check', async () => {
    await registerUser(env, 'csrf-pw', OLD)
    const cookie = await loginAs(env, 'csrf-pw', OLD)
    const response = await call(env.app, 'POST', '/user/password', {
      cookie,
      body: { currentPassword: OLD, newPassword: NEW },
      headers: { origin: 'https://evil.example' },
    })
    await expectError(response, 403, 'cross_origin_request')
    expect(await canLogin('csrf-pw', OLD)).toBe(true)
  })
})

describe('hash upgrade at login', () => {
  test('a hash made with weaker argon2id parameters is redone at OWASP cost on the next login', async () => {
    const weak = await hash('legacy password', { algorithm: 2, memoryCost: 8192, timeCost: 1, parallelism: 1 })
    expect(weak).toMatch(/^\$argon2id\$v=19\$m=8192,t=1,p=1\$/)
    await env.database.db.insert(users).values({ username: 'legacy', passwordHash: weak })

    expect(await canLogin('legacy', 'legacy password')).toBe(true)
    // The upgrade runs after the answer, off the request path.
    await waitFor(async () => (await storedHash('legacy')) !== weak, 5_000, 'the hash upgraded')
    const upgraded = await storedHash('legacy')
    expect(upgraded).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
    expect(upgraded).not.toBe(weak)
    // And it still verifies the same password.
    expect(await canLogin('legacy', 'legacy password')).toBe(true)
    expect(await storedHash('legacy')).toBe(upgraded)
  })

  test('an upgrade never reverts a password change committed after the login verified the old hash', async () => {
    const weak = await hash('legacy password', { algorithm: 2, memoryCost: 8192, timeCost: 1, parallelism: 1 })
    const [row] = await env.database.db
      .insert(users)
      .values({ username: 'legacy-race', passwordHash: weak })
      .returning({ id: users.id })
    // The password changes between the login's verification and its upgrade.
    const changed = await hash('changed password', { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 })
    await env.database.db
      .update(users)
      .set({ passwordHash: changed })
      .where(eq(users.id, row?.id ?? 0))
    expect(await upgradePasswordHash(env.ctx, row?.id ?? 0, weak, 'legacy password')).toBe(false)
    expect(await storedHash('legacy-race')).toBe(changed)
    expect(await canLogin('legacy-race', 'legacy password')).toBe(false)
    expect(await canLogin('legacy-race', 'changed password')).toBe(true)
  })

  test('a failed login does not touch the stored hash', async () => {
    const weak = await hash('legacy password', { algorithm: 2, memoryCost: 8192, timeCost: 1, parallelism: 1 })
    await env.database.db.insert(users).values({ username: 'legacy-fail', passwordHash: weak })
    expect(await canLogin('legacy-fail', 'wrong password')).toBe(false)
    expect(await storedHash('legacy-fail')).toBe(weak)
  })
})

// A login reads the user from PostgreSQL, spends milliseconds in argon2, then creates its session
// in Redis. A disable, delete or password change that commits in between must win: the create step
// refuses a user read at an older version once the change's relay has marked the user in Redis.
// These tests replay that interleaving step by step, with the user read before the change.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { loginLimitKeys } from '../src/modules/auth/rate-limit'
import { findUserByUsername, type UserWithPermissions } from '../src/modules/users/repository'
import { type AccountClosedError, createSession, decodeEvent, revokeUserSessions } from '../src/store'
import { ADMIN_PASSWORD, call, createTestEnv, loginAs, registerUser, streamEntries, type TestEnv } from './helpers'

let env: TestEnv
let admin: string
const PASSWORD = 'correct horse battery'

beforeAll(async () => {
  env = await createTestEnv('login_overtaken')
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
})
afterAll(async () => {
  await env.close()
})

/** What a login holds after its PostgreSQL read, before argon2 finishes. */
async function readForLogin(username: string): Promise<UserWithPermissions> {
  const user = await findUserByUsername(env.database.db, username)
  if (!user) throw new Error(`no user ${username}`)
  return user
}

/** The login's create step, as login() runs it. */
function createFor(user: UserWithPermissions) {
  return createSession(env.ctx.store, {
    user,
    ip: '10.1.2.3',
    userAgent: 'test',
    now: env.clock.now,
    event: {
      type: 'login_succeeded',
      username: user.username,
      instance: 'test',
      actorId: user.id,
      subjectId: user.id,
    },
  })
}

async function refused(promise: Promise<unknown>): Promise<string> {
  const error = (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as AccountClosedError | undefined
  return error?.name ?? 'created'
}

async function sessionKeysOf(userId: number): Promise<string[]> {
  const hashes = await env.redis.hkeys(env.ctx.store.keys.userIndex(userId))
  return hashes.filter((h) => h.length > 1)
}

const login = (username: string, password = PASSWORD) =>
  call(env.app, 'POST', '/user/login', { body: { username, password } })

describe('a change that commits while a login verifies the password wins', () => {
  test('disable: the stale login opens no session; after enable a fresh login does', async () => {
    const { id } = await registerUser(env, 'dana', PASSWORD)
    const stale = await readForLogin('dana')
    const disabled = await call(env.app, 'POST', `/admin/users/${id}/disable`, { cookie: admin })
    expect(disabled.status).toBe(200)

    expect(await refused(createFor(stale))).toBe('AccountClosedError')
    expect(await sessionKeysOf(id)).toEqual([])
    expect((await login('dana')).status).toBe(401)

    expect((await call(env.app, 'POST', `/admin/users/${id}/enable`, { cookie: admin })).status).toBe(200)
    // The read from before the disable is still refused; a read made now is not.
    expect(await refused(createFor(stale))).toBe('AccountClosedError')
    expect(await refused(createFor(await readForLogin('dana')))).toBe('created')
    expect((await login('dana')).status).toBe(200)
  })

  test('delete: the stale login opens no session', async () => {
    const { id } = await registerUser(env, 'dora', PASSWORD)
    const stale = await readForLogin('dora')
    expect((await call(env.app, 'DELETE', `/admin/users/${id}`, { cookie: admin })).status).toBe(200)
    expect(await refused(createFor(stale))).toBe('AccountClosedError')
    expect(await sessionKeysOf(id)).toEqual([])
  })

  test('password change that ends other sessions: a login that read the old password opens none', async () => {
    const { id } = await registerUser(env, 'pia', PASSWORD)
    const cookie = await loginAs(env, 'pia', PASSWORD)
    const stale = await readForLogin('pia')
    const changed = await call(env.app, 'POST', '/user/password', {
      cookie,
      body: { currentPassword: PASSWORD, newPassword: 'an entirely new passphrase' },
    })
    expect(changed.status).toBe(200)
    const before = await sessionKeysOf(id)
    expect(before).toHaveLength(1)

    expect(await refused(createFor(stale))).toBe('AccountClosedError')
    expect(await sessionKeysOf(id)).toEqual(before)
    expect((await login('pia', 'an entirely new passphrase')).status).toBe(200)
  })

  test('a grant does not close the account: a login that read before it opens a session with the newer permissions', async () => {
    const { id } = await registerUser(env, 'gus', PASSWORD)
    const stale = await readForLogin('gus')
    const granted = await call(env.app, 'POST', '/user/assign', {
      cookie: admin,
      body: { username: 'gus', permission: 'user:read' },
    })
    expect(granted.status).toBe(200)
    const created = await createFor(stale)
    expect(created.session.permissions).toEqual(['user:read'])
    expect(await sessionKeysOf(id)).toContain(created.session.tokenHash)
  })

  test('closures applied out of order keep the newest one', async () => {
    const { id } = await registerUser(env, 'olga', PASSWORD)
    const store = env.ctx.store
    const event = { type: 'user_disabled', instance: 'test', actorId: 0, subjectId: id } as const
    const revoke = (version: number) =>
      revokeUserSessions(store, { userId: id, event, now: env.clock.now, always: true, openFromVersion: version })
    await revoke(7)
    await revoke(5)
    expect(await env.redis.hget(store.keys.userIndex(id), 'c')).toBe('7')
    const at = (permissionsVersion: number) => ({
      id,
      username: 'olga',
      passwordHash: '',
      disabled: false,
      permissions: [],
      permissionsVersion,
    })
    expect(await refused(createFor(at(6)))).toBe('AccountClosedError')
    expect(await refused(createFor(at(7)))).toBe('created')
    // The user hash that carries the mark expires like any index, never before the floor of an hour.
    expect(await env.redis.pttl(store.keys.userIndex(id))).toBeGreaterThan(3_000_000)
  })

  test('login() itself: a refused create step is a failed login like any other (401, login_failed, attempt counted)', async () => {
    const { id } = await registerUser(env, 'rita', PASSWORD)
    const { permissionsVersion } = await readForLogin('rita')
    // The relay of a change PostgreSQL committed after this login's read, landing first.
    await revokeUserSessions(env.ctx.store, {
      userId: id,
      event: { type: 'user_disabled', instance: 'test', actorId: 0, subjectId: id },
      now: env.clock.now,
      always: true,
      openFromVersion: permissionsVersion + 1,
    })
    const response = await login('rita')
    expect(response.status).toBe(401)
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_credentials')
    expect(await sessionKeysOf(id)).toEqual([])
    const failures = (await streamEntries(env))
      .map(([, fields]) => decodeEvent(fields))
      .filter((e) => e?.type === 'login_failed' && e.subjectId === id)
    expect(failures).toMatchObject([{ reason: 'disabled' }])
    const [accountCounter] = loginLimitKeys(env.ctx, 'rita', '')
    expect(await env.redis.get(accountCounter)).toBe('1')
  })
})

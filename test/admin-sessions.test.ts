// Administration of sessions: one user's (session:revoke) and everyone's (superuser).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import type { SessionView } from '../src/modules/sessions/service'
import { decodeEvent } from '../src/store'
import {
  ADMIN_PASSWORD,
  call,
  createTestEnv,
  expectError,
  loginAs,
  registerUser,
  scanKeys,
  streamEntries,
  type TestEnv,
  tokenOf,
} from './helpers'

let env: TestEnv
let admin: string
let adminId: number
const PASSWORD = 'correct horse battery'
/** The session key's hash: the first 22 base64url characters of SHA-256 (src/store/token.ts). */
const sha256 = (token: string) => createHash('sha256').update(token).digest('base64url').slice(0, 22)

beforeAll(async () => {
  env = await createTestEnv('admin_sessions')
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
  adminId = ((await (await call(env.app, 'GET', '/user/me', { cookie: admin })).json()) as { id: number }).id
})
afterAll(async () => {
  await env.close()
})

async function account(username: string, ...permissions: string[]) {
  const { id } = await registerUser(env, username, PASSWORD)
  for (const permission of permissions) {
    const granted = await call(env.app, 'POST', '/user/assign', { cookie: admin, body: { username, permission } })
    expect(granted.status).toBe(200)
  }
  return { id, cookie: await loginAs(env, username, PASSWORD) }
}

const alive = async (cookie: string) => (await call(env.app, 'GET', '/user/me', { cookie })).status === 200

async function sessionsOf(userId: number, cookie: string): Promise<SessionView[]> {
  const response = await call(env.app, 'GET', `/admin/users/${userId}/sessions`, { cookie })
  expect(response.status).toBe(200)
  return ((await response.json()) as { sessions: SessionView[] }).sessions
}

const SOME_SESSION_ID = 'AAAAAAAAAAAAAAAA'

describe('every admin session route needs a session (401) and its permission (403)', () => {
  test.each([
    ['GET', '/admin/users/1/sessions', 'session:revoke'],
    ['DELETE', '/admin/users/1/sessions', 'session:revoke'],
    ['DELETE', `/admin/users/1/sessions/${SOME_SESSION_ID}`, 'session:revoke'],
    ['DELETE', '/admin/sessions', 'superuser'],
  ])('%s %s needs %s', async (method, path, permission) => {
    await expectError(await call(env.app, method, path), 401, 'unauthenticated')
    const suffix = `${method}-${path.length}`.toLowerCase()
    const plain = await account(`plain-${suffix}`)
    const denied = await expectError(await call(env.app, method, path, { cookie: plain.cookie }), 403, 'forbidden')
    expect(denied.error.message).toContain(permission)
    // user:read and user:manage do not include session:revoke; session:revoke does not include superuser.
    const neighbour = await account(
      `nb-${suffix}`,
      ...(permission === 'superuser' ? ['session:revoke', 'user:manage'] : ['user:read', 'user:manage']),
    )
    await expectError(await call(env.app, method, path, { cookie: neighbour.cookie }), 403, 'forbidden')
    expect(await alive(admin)).toBe(true)
  })
})

describe("a user's sessions", () => {
  test('listed without tokens or hashes; 404 for an unknown user', async () => {
    const revoker = await account('lister-revoker', 'session:revoke')
    const target = await account('listed')
    const second = await loginAs(env, 'listed', PASSWORD)
    const response = await call(env.app, 'GET', `/admin/users/${target.id}/sessions`, { cookie: revoker.cookie })
    const text = await response.text()
    const sessions = (JSON.parse(text) as { sessions: SessionView[] }).sessions
    expect(sessions).toHaveLength(2)
    expect(sessions.every((s) => !s.current)).toBe(true)
    for (const cookie of [target.cookie, second, revoker.cookie]) {
      expect(text).not.toContain(tokenOf(cookie))
      expect(text).not.toContain(sha256(tokenOf(cookie)))
    }
    await expectError(
      await call(env.app, 'GET', '/admin/users/999999/sessions', { cookie: revoker.cookie }),
      404,
      'user_not_found',
    )
  })

  test('one ended by public id; 404 for an id that is not theirs', async () => {
    const revoker = await account('one-revoker', 'session:revoke')
    const target = await account('one-target')
    const other = await account('one-other')
    const [otherSession] = await sessionsOf(other.id, revoker.cookie)
    await expectError(
      await call(env.app, 'DELETE', `/admin/users/${target.id}/sessions/${otherSession?.id}`, {
        cookie: revoker.cookie,
      }),
      404,
      'session_not_found',
    )
    expect(await alive(other.cookie)).toBe(true)

    env.clock.advance(1000)
    const keep = await loginAs(env, 'one-target', PASSWORD)
    const sessions = await sessionsOf(target.id, revoker.cookie)
    const victim = sessions[sessions.length - 1] // the oldest: target.cookie
    const response = await call(env.app, 'DELETE', `/admin/users/${target.id}/sessions/${victim?.id}`, {
      cookie: revoker.cookie,
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ended: 1, currentEnded: false })
    expect(await alive(target.cookie)).toBe(false)
    expect(await alive(keep)).toBe(true)

    const event = (await streamEntries(env))
      .map(([, f]) => decodeEvent(f))
      .find((e) => e?.type === 'session_revoked' && e.sessionHash === sha256(tokenOf(target.cookie)))
    expect(event).toMatchObject({ actorId: revoker.id, subjectId: target.id, reason: 'ended_by_admin' })
  })

  test('all ended at once', async () => {
    const revoker = await account('all-revoker', 'session:revoke')
    const target = await account('all-target')
    const second = await loginAs(env, 'all-target', PASSWORD)
    const response = await call(env.app, 'DELETE', `/admin/users/${target.id}/sessions`, { cookie: revoker.cookie })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ended: 2, currentEnded: false })
    expect(await alive(target.cookie)).toBe(false)
    expect(await alive(second)).toBe(false)
    expect(await alive(revoker.cookie)).toBe(true)
    expect(await sessionsOf(target.id, revoker.cookie)).toEqual([])
  })

  test("a superuser's sessions can be seen and ended only by a superuser or itself", async () => {
    const revoker = await account('super-revoker', 'session:revoke')
    await expectError(
      await call(env.app, 'GET', `/admin/users/${adminId}/sessions`, { cookie: revoker.cookie }),
      403,
      'protected_superuser',
    )
    const [adminSession] = await sessionsOf(adminId, admin)
    await expectError(
      await call(env.app, 'DELETE', `/admin/users/${adminId}/sessions`, { cookie: revoker.cookie }),
      403,
      'protected_superuser',
    )
    await expectError(
      await call(env.app, 'DELETE', `/admin/users/${adminId}/sessions/${adminSession?.id}`, { cookie: revoker.cookie }),
      403,
      'protected_superuser',
    )
    expect(await alive(admin)).toBe(true)
    // The superuser ends another superuser's sessions.
    const other = await account('other-super', 'superuser')
    const ended = await call(env.app, 'DELETE', `/admin/users/${other.id}/sessions`, { cookie: admin })
    expect(ended.status).toBe(200)
    expect(await alive(other.cookie)).toBe(false)
  })
})

describe('DELETE /admin/sessions', () => {
  test("ends every user's sessions but the caller's, then announces all_sessions_revoked", async () => {
    const users = await Promise.all(['every-a', 'every-b', 'every-c'].map((name) => account(name)))
    const extra = await loginAs(env, 'every-a', PASSWORD)
    const adminElsewhere = await loginAs(env, 'admin', ADMIN_PASSWORD)

    const response = await call(env.app, 'DELETE', '/admin/sessions', { cookie: admin })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { users: number; sessions: number }
    // Users created by earlier tests may still have sessions too; ours are among them.
    expect(body.users).toBeGreaterThanOrEqual(4)
    expect(body.sessions).toBeGreaterThanOrEqual(5)

    for (const { cookie } of users) expect(await alive(cookie)).toBe(false)
    expect(await alive(extra)).toBe(false)
    expect(await alive(adminElsewhere)).toBe(false)
    expect(await alive(admin)).toBe(true)
    const remaining = await scanKeys(env.redis, env.ctx.store.keys.session(0, ''))
    expect(remaining).toEqual([env.ctx.store.keys.session(0, sha256(tokenOf(admin)))])

    const events = (await streamEntries(env)).map(([, f]) => decodeEvent(f))
    const last = events[events.length - 1]
    expect(last).toMatchObject({ type: 'all_sessions_revoked', actorId: adminId, reason: 'ended_everywhere_by_admin' })
    const perUser = events.filter(
      (e) => e?.type === 'user_sessions_revoked' && e.reason === 'ended_everywhere_by_admin',
    )
    expect(perUser.map((e) => e?.subjectId)).toEqual(expect.arrayContaining(users.map((u) => u.id)))
  })
})

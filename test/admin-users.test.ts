// Administration of accounts under /admin/users: list, read, disable, enable, delete, and the
// superuser protections.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { decodeEvent } from '../src/store'
import {
  ADMIN_PASSWORD,
  call,
  createTestEnv,
  expectError,
  loginAs,
  registerUser,
  streamEntries,
  type TestEnv,
  tokenOf,
} from './helpers'

let env: TestEnv
let admin: string
const PASSWORD = 'correct horse battery'

beforeAll(async () => {
  env = await createTestEnv('admin_users')
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
})
afterAll(async () => {
  await env.close()
})

async function grant(username: string, permission: string, by = admin) {
  const response = await call(env.app, 'POST', '/user/assign', { cookie: by, body: { username, permission } })
  expect(response.status).toBe(200)
}

/** Registers a user, grants the permissions, logs in; returns id and cookie. */
async function account(username: string, ...permissions: string[]) {
  const { id } = await registerUser(env, username, PASSWORD)
  for (const permission of permissions) await grant(username, permission)
  return { id, cookie: await loginAs(env, username, PASSWORD) }
}

const alive = async (cookie: string) => (await call(env.app, 'GET', '/user/me', { cookie })).status === 200
const canLogin = async (username: string) =>
  (await call(env.app, 'POST', '/user/login', { body: { username, password: PASSWORD } })).status === 200

interface AdminUser {
  id: number
  username: string
  disabled: boolean
  permissions: string[]
}

describe('every /admin/users route needs a session (401) and its permission (403)', () => {
  test.each([
    ['GET', '/admin/users', 'user:read'],
    ['GET', '/admin/users/1', 'user:read'],
    ['POST', '/admin/users/1/disable', 'user:manage'],
    ['POST', '/admin/users/1/enable', 'user:manage'],
    ['DELETE', '/admin/users/1', 'user:manage'],
  ])('%s %s needs %s', async (method, path, permission) => {
    await expectError(await call(env.app, method, path), 401, 'unauthenticated')
    const plain = await account(`plain-${method}-${path.length}-${permission.length}`.toLowerCase())
    const denied = await expectError(await call(env.app, method, path, { cookie: plain.cookie }), 403, 'forbidden')
    expect(denied.error.message).toContain(permission)
    // A neighbouring admin permission is not enough either.
    const other = permission === 'user:read' ? 'session:revoke' : 'user:read'
    const neighbour = await account(`nb-${method}-${path.length}-${permission.length}`.toLowerCase(), other)
    await expectError(await call(env.app, method, path, { cookie: neighbour.cookie }), 403, 'forbidden')
    // Nothing happened to the admin account.
    expect(await alive(admin)).toBe(true)
  })
})

describe('GET /admin/users', () => {
  test('pages by id with a cursor, searches case-insensitively, filters by state', async () => {
    const reader = await account('reader', 'user:read')
    for (const name of ['Page_A1', 'page-a2', 'page.a3', 'pagea4']) await registerUser(env, name, PASSWORD)

    const first = (await (
      await call(env.app, 'GET', '/admin/users?q=PAGE&limit=2', { cookie: reader.cookie })
    ).json()) as {
      users: AdminUser[]
      nextAfter: number | null
    }
    expect(first.users.map((u) => u.username)).toEqual(['Page_A1', 'page-a2'])
    expect(first.nextAfter).toBe(first.users[1]?.id ?? -1)
    const second = (await (
      await call(env.app, 'GET', `/admin/users?q=page&limit=2&after=${first.nextAfter}`, { cookie: reader.cookie })
    ).json()) as { users: AdminUser[]; nextAfter: number | null }
    expect(second.users.map((u) => u.username)).toEqual(['page.a3', 'pagea4'])
    expect(second.nextAfter).toBeNull()

    // LIKE wildcards in q are literal characters.
    const literal = (await (await call(env.app, 'GET', '/admin/users?q=e_a', { cookie: reader.cookie })).json()) as {
      users: AdminUser[]
    }
    expect(literal.users.map((u) => u.username)).toEqual(['Page_A1'])
    // A character no username holds (% among them) is refused rather than searched for.
    const percent = await call(env.app, 'GET', '/admin/users?q=%25a', { cookie: reader.cookie })
    expect((await expectError(percent, 422, 'validation_failed')).error.field).toBe('q')

    const all = (await (await call(env.app, 'GET', '/admin/users?limit=100', { cookie: reader.cookie })).json()) as {
      users: AdminUser[]
    }
    const adminRow = all.users.find((u) => u.username === 'admin')
    expect(adminRow?.permissions).toEqual(['superuser'])
    expect(all.users.find((u) => u.username === 'reader')?.permissions).toEqual(['user:read'])
    // Nothing secret in a listing.
    expect(JSON.stringify(all)).not.toContain('argon2')
    expect(JSON.stringify(all)).not.toContain('passwordHash')
  })

  test('422 for a bad page size or cursor', async () => {
    const reader = await account('reader-422', 'user:read')
    await expectError(await call(env.app, 'GET', '/admin/users?limit=0', { cookie: reader.cookie }), 422)
    await expectError(await call(env.app, 'GET', '/admin/users?limit=101', { cookie: reader.cookie }), 422)
    await expectError(await call(env.app, 'GET', '/admin/users?after=x', { cookie: reader.cookie }), 422)
  })

  test('?disabled=true lists only disabled users', async () => {
    const manager = await account('filter-manager', 'user:manage', 'user:read')
    const off = await account('filter-off')
    expect((await call(env.app, 'POST', `/admin/users/${off.id}/disable`, { cookie: manager.cookie })).status).toBe(200)
    const page = (await (
      await call(env.app, 'GET', '/admin/users?disabled=true', { cookie: manager.cookie })
    ).json()) as {
      users: AdminUser[]
    }
    expect(page.users.map((u) => u.username)).toContain('filter-off')
    expect(page.users.every((u) => u.disabled)).toBe(true)
  })
})

describe('GET /admin/users/:id', () => {
  test('reads one user with permissions; 404 when unknown, 422 when not an id', async () => {
    const reader = await account('one-reader', 'user:read')
    const response = await call(env.app, 'GET', `/admin/users/${reader.id}`, { cookie: reader.cookie })
    expect(response.status).toBe(200)
    const user = (await response.json()) as AdminUser & { createdAt: string }
    expect(user).toMatchObject({ id: reader.id, username: 'one-reader', disabled: false, permissions: ['user:read'] })
    expect(Date.parse(user.createdAt)).toBeGreaterThan(0)
    await expectError(
      await call(env.app, 'GET', '/admin/users/999999', { cookie: reader.cookie }),
      404,
      'user_not_found',
    )
    await expectError(await call(env.app, 'GET', '/admin/users/abc', { cookie: reader.cookie }), 422)
  })
})

describe('disable and enable', () => {
  test('disabling ends every session at once, with one event naming them; login is refused until enabled', async () => {
    const manager = await account('manager', 'user:manage')
    const target = await account('disable-me')
    const second = await loginAs(env, 'disable-me', PASSWORD)

    const response = await call(env.app, 'POST', `/admin/users/${target.id}/disable`, { cookie: manager.cookie })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ id: target.id, disabled: true, changed: true, propagated: true })
    expect(await alive(target.cookie)).toBe(false)
    expect(await alive(second)).toBe(false)
    expect(await canLogin('disable-me')).toBe(false)

    const sha = (c: string) => createHash('sha256').update(tokenOf(c)).digest('base64url').slice(0, 22)
    const disabledEvents = (await streamEntries(env))
      .map(([, f]) => decodeEvent(f))
      .filter((e) => e?.type === 'user_disabled' && e.subjectId === target.id)
    expect(disabledEvents).toHaveLength(1)
    expect(disabledEvents[0]?.sessionHash?.split(',').sort()).toEqual([sha(target.cookie), sha(second)].sort())
    expect(disabledEvents[0]?.actorId).toBe(manager.id)

    // Again: nothing changes, nothing is announced twice.
    const again = await call(env.app, 'POST', `/admin/users/${target.id}/disable`, { cookie: manager.cookie })
    expect(((await again.json()) as { changed: boolean }).changed).toBe(false)

    const enabled = await call(env.app, 'POST', `/admin/users/${target.id}/enable`, { cookie: manager.cookie })
    expect(enabled.status).toBe(200)
    expect(await enabled.json()).toEqual({ id: target.id, disabled: false, changed: true, propagated: true })
    expect(await canLogin('disable-me')).toBe(true)
  })

  test('write answers show the account only to holders of user:read', async () => {
    const manager = await account('manager-blind', 'user:manage')
    const reader = await account('manager-reader', 'user:manage', 'user:read')
    const target = await account('watched', 'audit:read')
    // A no-op enable must not let a user:manage holder read what GET /admin/users/:id refuses it.
    await expectError(await call(env.app, 'GET', `/admin/users/${target.id}`, { cookie: manager.cookie }), 403)
    const blind = await call(env.app, 'POST', `/admin/users/${target.id}/enable`, { cookie: manager.cookie })
    expect(await blind.json()).toEqual({ id: target.id, disabled: false, changed: false, propagated: true })
    const seen = await call(env.app, 'POST', `/admin/users/${target.id}/enable`, { cookie: reader.cookie })
    expect(((await seen.json()) as { user: AdminUser }).user).toMatchObject({
      id: target.id,
      username: 'watched',
      permissions: ['audit:read'],
    })
    // Deleting reports the id it was given, and the name only to a reader.
    const doomed = await account('doomed')
    const deleted = await call(env.app, 'DELETE', `/admin/users/${doomed.id}`, { cookie: manager.cookie })
    expect(await deleted.json()).toEqual({ id: doomed.id, propagated: true })
    // A user:assign holder learns the change it made, not the user's other permissions.
    const assigner = await account('assigner-blind', 'user:assign', 'session:revoke')
    const granted = await call(env.app, 'POST', '/user/assign', {
      cookie: assigner.cookie,
      body: { username: 'watched', permission: 'session:revoke' },
    })
    expect(await granted.json()).toEqual({ userId: target.id, username: 'watched', changed: true, propagated: true })
  })

  test('404 for an unknown user', async () => {
    const manager = await account('manager-404', 'user:manage')
    await expectError(await call(env.app, 'POST', '/admin/users/999999/disable', { cookie: manager.cookie }), 404)
    await expectError(await call(env.app, 'POST', '/admin/users/999999/enable', { cookie: manager.cookie }), 404)
    await expectError(await call(env.app, 'DELETE', '/admin/users/999999', { cookie: manager.cookie }), 404)
  })
})

describe('DELETE /admin/users/:id', () => {
  test('deletes the account and ends its sessions', async () => {
    const manager = await account('deleter', 'user:manage', 'user:read')
    const target = await account('delete-me', 'user:read')
    const response = await call(env.app, 'DELETE', `/admin/users/${target.id}`, { cookie: manager.cookie })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ id: target.id, username: 'delete-me', propagated: true })
    expect(await alive(target.cookie)).toBe(false)
    expect(await canLogin('delete-me')).toBe(false)
    await expectError(await call(env.app, 'GET', `/admin/users/${target.id}`, { cookie: manager.cookie }), 404)
    // The username is free again.
    await registerUser(env, 'delete-me', PASSWORD)
  })
})

describe('superuser protections', () => {
  test('nobody else can disable or delete a superuser; the last one cannot remove itself', async () => {
    const manager = await account('protector', 'user:manage', 'user:read')
    const adminId = ((await (await call(env.app, 'GET', '/user/me', { cookie: admin })).json()) as { id: number }).id

    await expectError(
      await call(env.app, 'POST', `/admin/users/${adminId}/disable`, { cookie: manager.cookie }),
      403,
      'protected_superuser',
    )
    await expectError(
      await call(env.app, 'DELETE', `/admin/users/${adminId}`, { cookie: manager.cookie }),
      403,
      'protected_superuser',
    )
    // The last superuser, acting on itself.
    await expectError(
      await call(env.app, 'POST', `/admin/users/${adminId}/disable`, { cookie: admin }),
      409,
      'last_superuser',
    )
    await expectError(
      await call(env.app, 'DELETE', `/admin/users/${adminId}`, { cookie: admin }),
      409,
      'last_superuser',
    )
    expect(await alive(admin)).toBe(true)

    // A second superuser may not touch the first, but may disable itself now that it is not the last.
    const second = await account('second-super', 'superuser')
    await expectError(
      await call(env.app, 'POST', `/admin/users/${adminId}/disable`, { cookie: second.cookie }),
      403,
      'protected_superuser',
    )
    await expectError(
      await call(env.app, 'DELETE', `/admin/users/${adminId}`, { cookie: second.cookie }),
      403,
      'protected_superuser',
    )
    const selfDisable = await call(env.app, 'POST', `/admin/users/${second.id}/disable`, { cookie: second.cookie })
    expect(selfDisable.status).toBe(200)
    expect(await alive(second.cookie)).toBe(false)
    // A disabled superuser does not count: admin is the last active one again.
    await expectError(
      await call(env.app, 'DELETE', `/admin/users/${adminId}`, { cookie: admin }),
      409,
      'last_superuser',
    )
    // Enabled again, it is still protected from admin, and may delete itself while admin remains.
    expect((await call(env.app, 'POST', `/admin/users/${second.id}/enable`, { cookie: admin })).status).toBe(200)
    expect((await call(env.app, 'DELETE', `/admin/users/${second.id}`, { cookie: admin })).status).toBe(403)
    const secondAgain = await loginAs(env, 'second-super', PASSWORD)
    expect((await call(env.app, 'DELETE', `/admin/users/${second.id}`, { cookie: secondAgain })).status).toBe(200)
  })
})

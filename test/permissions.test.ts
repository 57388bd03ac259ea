// Permissions reach live sessions at once (ASVS 8.3.2), and delegation is bounded: nobody grants
// what they do not hold, only a superuser grants superuser, the last superuser stays.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { PERMISSION_NAMES } from '../src/modules/permissions/catalogue'
import { ADMIN_PASSWORD, call, createTestEnv, expectError, loginAs, registerUser, type TestEnv } from './helpers'

let env: TestEnv
let admin: string
beforeAll(async () => {
  env = await createTestEnv('permissions')
  for (const name of ['hana', 'ivan', 'jill', 'kurt']) await registerUser(env, name, `${name}-password-1`)
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
})
afterAll(async () => {
  await env.close()
})

const assign = (cookie: string, username: string, permission: string) =>
  call(env.app, 'POST', '/user/assign', { body: { username, permission }, cookie })
const unassign = (cookie: string, username: string, permission: string) =>
  call(env.app, 'POST', '/user/unassign', { body: { username, permission }, cookie })
const permissionsOf = async (cookie: string) => {
  const response = await call(env.app, 'GET', '/user/me', { cookie })
  expect(response.status).toBe(200)
  return ((await response.json()) as { permissions: string[] }).permissions
}

describe('live grant and revoke', () => {
  test("a grant makes the user's existing cookie pass; a revoke makes it 403, with no new login", async () => {
    const hana = await loginAs(env, 'hana', 'hana-password-1')
    expect(await permissionsOf(hana)).toEqual([])
    await expectError(await assign(hana, 'ivan', 'user:assign'), 403, 'forbidden')

    const granted = await assign(admin, 'hana', 'user:assign')
    expect(granted.status).toBe(200)
    expect(await granted.json()).toMatchObject({
      username: 'hana',
      permissions: ['user:assign'],
      changed: true,
      propagated: true,
    })
    expect(await permissionsOf(hana)).toEqual(['user:assign'])
    // Her same cookie now passes the permission check (and she may pass on what she holds).
    expect((await assign(hana, 'ivan', 'user:assign')).status).toBe(200)

    expect((await unassign(admin, 'hana', 'user:assign')).status).toBe(200)
    expect(await permissionsOf(hana)).toEqual([])
    await expectError(await assign(hana, 'jill', 'user:assign'), 403, 'forbidden')
  })

  test('every live session of the user changes, and sessions created later carry the change', async () => {
    const first = await loginAs(env, 'jill', 'jill-password-1')
    const second = await loginAs(env, 'jill', 'jill-password-1')
    expect((await assign(admin, 'jill', 'user:read')).status).toBe(200)
    expect(await permissionsOf(first)).toEqual(['user:read'])
    expect(await permissionsOf(second)).toEqual(['user:read'])
    const later = await loginAs(env, 'jill', 'jill-password-1')
    expect(await permissionsOf(later)).toEqual(['user:read'])
  })

  test('granting what is already held changes nothing and says so', async () => {
    const again = await assign(admin, 'jill', 'user:read')
    expect(again.status).toBe(200)
    expect(await again.json()).toMatchObject({ changed: false, permissions: ['user:read'] })
  })
})

describe('delegation rules', () => {
  let ivan: string
  beforeAll(async () => {
    // Ivan holds user:assign and nothing else.
    expect((await assign(admin, 'ivan', 'user:assign')).status).toBe(200)
    ivan = await loginAs(env, 'ivan', 'ivan-password-1')
    expect(await permissionsOf(ivan)).toEqual(['user:assign'])
  })

  test('a user with user:assign cannot grant a permission it does not hold', async () => {
    await expectError(await assign(ivan, 'kurt', 'audit:read'), 403, 'cannot_delegate')
    await expectError(await unassign(ivan, 'jill', 'user:read'), 403, 'cannot_delegate')
    expect(await permissionsOf(await loginAs(env, 'kurt', 'kurt-password-1'))).toEqual([])
  })

  test('a user with user:assign cannot grant superuser, not even to itself', async () => {
    await expectError(await assign(ivan, 'kurt', 'superuser'), 403, 'cannot_delegate')
    await expectError(await assign(ivan, 'ivan', 'superuser'), 403, 'cannot_delegate')
    expect(await permissionsOf(ivan)).toEqual(['user:assign'])
  })

  test('an unknown permission is 422 naming the field; an unknown user is 404', async () => {
    const unknown = await expectError(await assign(admin, 'kurt', 'root'), 422)
    expect(unknown.error.field).toBe('permission')
    await expectError(await assign(admin, 'no-such-user', 'user:read'), 404)
  })

  test('the last superuser cannot lose superuser (409)', async () => {
    await expectError(await unassign(admin, 'admin', 'superuser'), 409, 'last_superuser')
    expect(await permissionsOf(admin)).toContain('superuser')
  })

  test('only a superuser grants superuser; the new superuser holds every permission', async () => {
    const granted = await assign(admin, 'kurt', 'superuser')
    expect(granted.status).toBe(200)
    const kurt = await loginAs(env, 'kurt', 'kurt-password-1')
    expect(await permissionsOf(kurt)).toContain('superuser')
    // Superuser implies user:assign and everything else it may pass on.
    expect((await assign(kurt, 'jill', 'audit:read')).status).toBe(200)
    expect((await assign(kurt, 'jill', 'superuser')).status).toBe(200)
    // A superuser is stripped only by itself, and may step down while another remains.
    await expectError(await unassign(kurt, 'jill', 'superuser'), 403, 'protected_superuser')
    const jill = await loginAs(env, 'jill', 'jill-password-1')
    expect((await unassign(jill, 'jill', 'superuser')).status).toBe(200)
    expect(await permissionsOf(jill)).not.toContain('superuser')
  })
})

describe('GET /permissions', () => {
  test('lists the catalogue, publicly', async () => {
    const response = await call(env.app, 'GET', '/permissions')
    expect(response.status).toBe(200)
    const list = (await response.json()) as { name: string; description: string }[]
    expect(list.map((p) => p.name).sort()).toEqual([...PERMISSION_NAMES].sort())
    for (const name of ['superuser', 'user:assign', 'user:read', 'session:revoke', 'audit:read']) {
      expect(list.map((p) => p.name)).toContain(name)
    }
    for (const entry of list) expect(entry.description.length).toBeGreaterThan(0)
  })
})

describe('the last two superusers stepping down at the same moment', () => {
  let own: TestEnv
  beforeAll(async () => {
    own = await createTestEnv('permissions_race')
    await registerUser(own, 'nora', 'nora-password-1')
  })
  afterAll(async () => {
    await own.close()
  })

  test('exactly one succeeds and the other gets 409: one superuser always remains', async () => {
    const call2 = (cookie: string, path: string, username: string) =>
      call(own.app, 'POST', path, { cookie, body: { username, permission: 'superuser' } })
    const admin = await loginAs(own, 'admin', ADMIN_PASSWORD)
    const nora = await loginAs(own, 'nora', 'nora-password-1')
    expect((await call2(admin, '/user/assign', 'nora')).status).toBe(200)
    // Several rounds: each starts with exactly two superusers, who both step down at once.
    for (let round = 0; round < 6; round++) {
      const [a, n] = await Promise.all([call2(admin, '/user/unassign', 'admin'), call2(nora, '/user/unassign', 'nora')])
      expect([a.status, n.status].sort()).toEqual([200, 409])
      const [survivor, stepped] = a.status === 409 ? ['admin', 'nora'] : ['nora', 'admin']
      const survivorCookie = survivor === 'admin' ? admin : nora
      expect((await call2(survivorCookie, '/user/assign', stepped)).status).toBe(200)
    }
  })
})

// The typed client: Eden Treaty over `type App`, calling the app in-process with full types.

import { afterAll, beforeAll, describe, expect, expectTypeOf, test } from 'bun:test'
import { treaty } from '@elysia/eden'
import type { App } from '../src/app'
import { ADMIN_PASSWORD, createTestEnv, type TestEnv } from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('eden')
})
afterAll(async () => {
  await env.close()
})

const cookieFrom = (response: Response) => response.headers.getSetCookie()[0]?.split(';')[0] ?? ''

describe('Eden Treaty', () => {
  test('registers, logs in, lists sessions, manages users and ends sessions with typed calls', async () => {
    const api = treaty<App>(env.app)

    const created = await api.user.post({ username: 'erin', password: 'correct horse battery' })
    expect(created.status).toBe(201)
    expectTypeOf(created.data?.id).toEqualTypeOf<number | undefined>()

    const login = await api.user.login.post({ username: 'erin', password: 'correct horse battery' })
    expect(login.status).toBe(200)
    expect(login.data?.username).toBe('erin')
    const cookie = cookieFrom(login.response)
    const headers = { cookie }

    const mine = await api.sessions.get({ headers })
    expect(mine.status).toBe(200)
    const first = mine.data?.sessions[0]
    expectTypeOf(first?.current).toEqualTypeOf<boolean | undefined>()
    expectTypeOf(first?.lastSeenAt).toEqualTypeOf<string | undefined>()
    // @ts-expect-error: a listing has no token or hash field, and the types say so.
    expect(first?.tokenHash).toBeUndefined()
    expect(first?.current).toBe(true)

    // Errors are typed too: 401 without the cookie, with the one error body.
    const anonymous = await api.sessions.get()
    expect(anonymous.status).toBe(401)
    expect(anonymous.error?.status).toBe(401)

    const adminLogin = await api.user.login.post({ username: 'admin', password: ADMIN_PASSWORD })
    const admin = { cookie: cookieFrom(adminLogin.response) }
    const page = await api.admin.users.get({ headers: admin, query: { q: 'eri', limit: 10 } })
    expect(page.data?.users.map((u) => u.username)).toEqual(['erin'])
    expectTypeOf(page.data?.nextAfter).toEqualTypeOf<number | null | undefined>()
    const erinId = page.data?.users[0]?.id ?? 0

    const one = await api.admin.users({ id: erinId }).get({ headers: admin })
    expect(one.data?.permissions).toEqual([])
    const theirs = await api.admin.users({ id: erinId }).sessions.get({ headers: admin })
    expect(theirs.data?.sessions).toHaveLength(1)

    const ended = await api.admin.users({ id: erinId }).sessions.delete(undefined, { headers: admin })
    expect(ended.data).toEqual({ ended: 1, currentEnded: false })
    expect((await api.user.me.get({ headers })).status).toBe(401)
  })
})

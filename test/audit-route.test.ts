// GET /audit over events recorded by the audit consumer, and the event stream's own guarantees:
// events carry no token, and a reader whose position was trimmed away drops its cache.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { silentLogger } from '../src/lib/logger'
import { dropCacheIfEventsWereMissed } from '../src/modules/events/tailer'
import { createSessionCache } from '../src/modules/sessions/cache'
import { decodeEvent } from '../src/store'
import {
  ADMIN_PASSWORD,
  call,
  createTestEnv,
  loginAs,
  registerUser,
  sessionTokenFrom,
  startAuditConsumer,
  streamEntries,
  type TestEnv,
} from './helpers'
import { waitFor } from './processes'

let env: TestEnv
let admin: string
let auditor: string
let mallory: string
let consumer: { stop(): Promise<void> }

beforeAll(async () => {
  env = await createTestEnv('audit_route')
  consumer = startAuditConsumer(env)
  await registerUser(env, 'ivan', 'ivan-password-1')
  await registerUser(env, 'mallory', 'mallory-password')
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
  const grant = await call(env.app, 'POST', '/user/assign', {
    body: { username: 'ivan', permission: 'audit:read' },
    cookie: admin,
  })
  expect(grant.status).toBe(200)
  auditor = await loginAs(env, 'ivan', 'ivan-password-1')
  mallory = await loginAs(env, 'mallory', 'mallory-password')
  await call(env.app, 'POST', '/user/login', { body: { username: 'mallory', password: 'wrong-password' } })
  await call(env.app, 'POST', '/user/logout', { cookie: mallory })
  await consumerCaughtUp()
})

/** Waits until every stream entry so far is a row, so pages are not read while rows arrive. */
async function consumerCaughtUp(): Promise<void> {
  const streamLength = await env.redis.xlen(env.ctx.store.keys.events(0))
  await waitFor(
    async () => {
      const [row] = await env.database.sql<{ count: number }[]>`select count(*)::int from audit_events`
      return (row?.count ?? 0) >= streamLength
    },
    10_000,
    'audit rows',
  )
}

afterAll(async () => {
  await consumer?.stop()
  await env.close()
})

type Page = {
  events: { id: string; type: string; subjectId: number | null; data: Record<string, unknown> }[]
  nextCursor: string | null
}

describe('GET /audit', () => {
  test('needs a session (401) and audit:read (403)', async () => {
    expect((await call(env.app, 'GET', '/audit')).status).toBe(401)
    expect((await call(env.app, 'GET', '/audit', { cookie: mallory })).status).toBe(401)
    const stranger = await loginAs(env, 'mallory', 'mallory-password')
    expect((await call(env.app, 'GET', '/audit', { cookie: stranger })).status).toBe(403)
  })

  test('lists every kind of event written, newest first', async () => {
    const response = await call(env.app, 'GET', '/audit?limit=200', { cookie: auditor })
    expect(response.status).toBe(200)
    const page = (await response.json()) as Page
    const types = new Set(page.events.map((e) => e.type))
    for (const type of ['user_created', 'login_succeeded', 'login_failed', 'logout', 'permission_granted']) {
      expect(types.has(type)).toBe(true)
    }
    const times = page.events.map((e) => Date.parse((e as unknown as { at: string }).at))
    expect([...times].sort((a, b) => b - a)).toEqual(times)
    const failed = page.events.find((e) => e.type === 'login_failed')
    expect(failed?.data.username).toBe('mallory')
    expect(JSON.stringify(page)).not.toContain('wrong-password')
  })

  test('filters by user, type and time, and pages with a cursor', async () => {
    await consumerCaughtUp()
    const mal = (await env.database.sql<{ id: number }[]>`select id from users where username = 'mallory'`)[0]
    const byUser = (await (await call(env.app, 'GET', `/audit?userId=${mal?.id}`, { cookie: auditor })).json()) as Page
    expect(byUser.events.length).toBeGreaterThan(0)
    expect(
      byUser.events.every((e) => e.subjectId === mal?.id || (e as unknown as { actorId: number }).actorId === mal?.id),
    ).toBe(true)

    const logins = (await (
      await call(env.app, 'GET', '/audit?type=login_succeeded', { cookie: auditor })
    ).json()) as Page
    expect(logins.events.length).toBeGreaterThanOrEqual(3)
    expect(logins.events.every((e) => e.type === 'login_succeeded')).toBe(true)

    const future = new Date(Date.now() + 3_600_000).toISOString()
    const none = (await (await call(env.app, 'GET', `/audit?from=${future}`, { cookie: auditor })).json()) as Page
    expect(none.events).toEqual([])

    const seen: string[] = []
    let cursor: string | null = null
    do {
      const path: string = `/audit?limit=2${cursor ? `&cursor=${cursor}` : ''}`
      const page = (await (await call(env.app, 'GET', path, { cookie: auditor })).json()) as Page
      expect(page.events.length).toBeLessThanOrEqual(2)
      seen.push(...page.events.map((e) => e.id))
      cursor = page.nextCursor
    } while (cursor)
    const all = (await (await call(env.app, 'GET', '/audit?limit=200', { cookie: auditor })).json()) as Page
    expect(seen).toEqual(all.events.map((e) => e.id))
  })

  test('rejects bad filters with 422', async () => {
    for (const query of ['type=nope', 'limit=0', 'limit=1000', 'from=yesterday', 'cursor=abc', 'userId=x', 'extra=1']) {
      const response = await call(env.app, 'GET', `/audit?${query}`, { cookie: auditor })
      expect([400, 422]).toContain(response.status)
    }
  })
})

describe('event stream', () => {
  test('entries name sessions by hash only and carry instance, actor, subject, ip and user agent', async () => {
    const login = await call(env.app, 'POST', '/user/login', {
      body: { username: 'ivan', password: 'ivan-password-1' },
      headers: { 'user-agent': 'audit-test-agent/1.0' },
    })
    const token = sessionTokenFrom(login, env.config.cookieName) ?? ''
    const entries = await streamEntries(env)
    expect(entries.some(([, fields]) => fields.join(' ').includes(token))).toBe(false)
    const last = decodeEvent(entries[entries.length - 1]?.[1] ?? [])
    expect(last).toMatchObject({
      type: 'login_succeeded',
      userAgent: 'audit-test-agent/1.0',
      instance: env.config.instanceId,
    })
    expect(last?.sessionHash).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(last?.actorId).toBeGreaterThan(0)
  })

  test('a reader whose position was trimmed away drops its whole cache', async () => {
    const cache = createSessionCache(10)
    cache.renewTrust(0, 60_000)
    const fake = {
      partition: 0,
      tokenHash: 'h',
      publicId: 'p',
      userId: 1,
      username: 'u',
      permissions: [],
      createdAt: 0,
      lastSeenAt: 0,
      expiresAt: 1,
      ip: '',
      userAgent: '',
      userAgentRef: '',
      authenticatedAt: 0,
    }
    const key = `${env.prefix}trim-test`
    const first = (await env.redis.xadd(key, '*', 't', 'logout')) as string
    await env.redis.xadd(key, '*', 't', 'logout')

    cache.set(fake, cache.epoch)
    await dropCacheIfEventsWereMissed(env.redis, key, cache, first, silentLogger)
    expect(cache.size).toBe(1)

    await env.redis.xtrim(key, 'MAXLEN', 1)
    await dropCacheIfEventsWereMissed(env.redis, key, cache, first, silentLogger)
    expect(cache.size).toBe(0)
  })
})

// Anti-automation beyond the login limits (issue 17 items 3-6): registration is throttled per
// client before any hashing and can be closed; a limited client is counted, not streamed per
// request; one username normalisation everywhere; IPv6 clients counted by their /64.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { hashPassword } from '../src/modules/users/password'
import { decodeEvent } from '../src/store'
import {
  ADMIN_PASSWORD,
  call,
  createAppWith,
  createTestEnv,
  expectError,
  loginAs,
  registerUser,
  streamEntries,
  type TestEnv,
} from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('anti_automation', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '2' })
})
afterAll(() => env.close())

/** An app that sees the client address from X-Forwarded-For, with its own limits. */
const behindProxy = (overrides: Record<string, string> = {}) =>
  createAppWith(env, { TRUST_PROXY: 'true', ...overrides })
const from = (ip: string) => ({ 'x-forwarded-for': ip })

const register = (app: ReturnType<typeof behindProxy>, username: string, ip: string) =>
  call(app, 'POST', '/user', { body: { username, password: 'a-fine-password' }, headers: from(ip) })

async function streamEvents() {
  return (await streamEntries(env)).map(([, fields]) => decodeEvent(fields))
}

describe('registration', () => {
  test('is limited per client address, before any argon2 work, and concurrent floods meet the limit', async () => {
    const app = behindProxy({ REGISTRATION_MAX_PER_IP: '10' })
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => register(app, `flood-${i}`, '203.0.113.7')))
    const statuses = answers.map((r) => r.status)
    expect(statuses.filter((s) => s === 201)).toHaveLength(10)
    expect(statuses.filter((s) => s === 429)).toHaveLength(30)
    const refused = answers.find((r) => r.status === 429)
    expect(Number(refused?.headers.get('retry-after'))).toBeGreaterThan(0)
    // Another client is not affected.
    expect((await register(app, 'other-client', '203.0.113.8')).status).toBe(201)

    // Refused attempts cost no hashing: 100 of them take less time than 5 argon2 hashes, side by side.
    const hashesStarted = performance.now()
    for (let i = 0; i < 5; i++) await hashPassword(`password-${i}`)
    const fiveHashesMs = performance.now() - hashesStarted
    const refusedStarted = performance.now()
    for (let i = 0; i < 100; i++) {
      expect((await register(app, `late-${i}`, '203.0.113.7')).status).toBe(429)
    }
    expect(performance.now() - refusedStarted).toBeLessThan(fiveHashesMs)
  })

  test('IPv6 clients count by their /64; another /64 is another client', async () => {
    const app = behindProxy({ REGISTRATION_MAX_PER_IP: '3' })
    for (let i = 0; i < 3; i++) {
      expect((await register(app, `six-${i}`, `2001:db8:aa:1::${i + 1}`)).status).toBe(201)
    }
    // The next address of the same /64 is the same client.
    await expectError(await register(app, 'six-3', '2001:db8:aa:1:ffff:ffff:ffff:ffff'), 429, 'too_many_attempts')
    expect((await register(app, 'six-4', '2001:db8:aa:2::1')).status).toBe(201)
    // Configurable: counted by the /128, each address is its own client.
    const exact = behindProxy({ REGISTRATION_MAX_PER_IP: '1', RATE_LIMIT_IPV6_PREFIX: '128' })
    expect((await register(exact, 'exact-0', '2001:db8:bb:1::1')).status).toBe(201)
    expect((await register(exact, 'exact-1', '2001:db8:bb:1::2')).status).toBe(201)
  })

  test('REGISTRATION=closed refuses POST /user; a user:manage holder creates accounts', async () => {
    const closed = createAppWith(env, { REGISTRATION: 'closed' })
    await expectError(
      await call(closed, 'POST', '/user', { body: { username: 'walk-in', password: 'a-fine-password' } }),
      403,
      'registration_closed',
    )
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    const created = await call(closed, 'POST', '/admin/users', {
      cookie: admin,
      body: { username: 'invited', password: 'a-fine-password' },
    })
    expect(created.status).toBe(201)
    const { id } = (await created.json()) as { id: number }
    const event = (await streamEvents()).find((e) => e?.type === 'user_created' && e.subjectId === id)
    expect(event?.actorId).toBeGreaterThan(0)
    const nobody = await loginAs(env, 'invited', 'a-fine-password')
    await expectError(
      await call(closed, 'POST', '/admin/users', {
        cookie: nobody,
        body: { username: 'x-y-z', password: 'a-fine-password' },
      }),
      403,
      'forbidden',
    )
  })
})

describe('a client at its login limit', () => {
  test('is counted, not streamed: one event when the limit is first hit, none for the refusals after it', async () => {
    await registerUser(env, 'hammered', 'hammered-password')
    for (let i = 0; i < 2; i++) {
      await expectError(
        await call(env.app, 'POST', '/user/login', { body: { username: 'hammered', password: 'x' } }),
        401,
      )
    }
    for (let i = 0; i < 50; i++) {
      const response = await call(env.app, 'POST', '/user/login', { body: { username: 'hammered', password: 'x' } })
      expect(response.status).toBe(429)
    }
    const failures = (await streamEvents()).filter((e) => e?.type === 'login_failed' && e.username === 'hammered')
    const reasons = failures.map((e) => (e as { reason: string }).reason)
    expect(reasons).toEqual(['bad_credentials', 'bad_credentials', 'rate_limited'])
    expect(await (await call(env.app, 'GET', '/metrics')).text()).toMatch(
      /tessera_logins_total\{outcome="rate_limited"\} 50\b/,
    )
  })
})

describe('one username normalisation', () => {
  test('a name registration would refuse is an unknown user, and cannot open a second counter', async () => {
    await registerUser(env, 'admiral', 'admiral-password')
    // A dotted capital I folds to "i" in PostgreSQL's lower(), not in ASCII: it is not admiral.
    const turkish = 'adm\u0130ral'
    await expectError(
      await call(env.app, 'POST', '/user/login', { body: { username: turkish, password: 'admiral-password' } }),
      401,
      'invalid_credentials',
    )
    // Two failures under the real name reach its limit; the look-alike did not count towards it, and
    // spelling variants of the real name share its counter.
    for (const name of ['admiral', 'ADMIRAL']) {
      await expectError(await call(env.app, 'POST', '/user/login', { body: { username: name, password: 'x' } }), 401)
    }
    await expectError(
      await call(env.app, 'POST', '/user/login', { body: { username: 'Admiral', password: 'admiral-password' } }),
      429,
    )
    // Registration refuses the look-alike outright.
    await expectError(
      await call(env.app, 'POST', '/user', { body: { username: turkish, password: 'a-fine-password' } }),
      422,
      'validation_failed',
    )
  })

  test('IPv6 login clients count by their /64 too', async () => {
    await registerUser(env, 'roamer', 'roamer-password')
    const app = behindProxy({ LOGIN_MAX_FAILURES_PER_IP: '3', LOGIN_MAX_FAILURES_PER_ACCOUNT: '100' })
    const attempt = (username: string, ip: string) =>
      call(app, 'POST', '/user/login', { body: { username, password: 'wrong' }, headers: from(ip) })
    for (let i = 0; i < 3; i++) expect((await attempt(`guess-${i}`, `2001:db8:cc:1::${i + 10}`)).status).toBe(401)
    expect((await attempt('guess-4', '2001:db8:cc:1:1:2:3:4')).status).toBe(429)
    expect((await attempt('guess-5', '2001:db8:cc:9::1')).status).toBe(401)
  })
})

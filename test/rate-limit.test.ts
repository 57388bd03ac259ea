// Failed-login limits (ASVS 6.3.1): after LOGIN_MAX_FAILURES_PER_ACCOUNT failures from one client
// the account is refused to that client with 429 and Retry-After, even with the right password;
// other accounts, and the same account from another client, are unaffected.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createContext } from '../src/context'
import { createDatabase } from '../src/db/client'
import { silentLogger } from '../src/lib/logger'
import { loginLimitKeys, releaseLoginAttempt, reserveLoginAttempt } from '../src/modules/auth/rate-limit'
import { connectRedis, createRedis } from '../src/store'
import {
  call,
  createAppWith,
  createTestEnv,
  databaseUrlFor,
  expectError,
  freePort,
  REDIS_URL,
  registerUser,
  scanKeys,
  type TestEnv,
} from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('rate-limit', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_FAILURE_WINDOW: '15m' })
  for (const name of ['sara', 'tomas', 'uma']) await registerUser(env, name, `${name}-password-1`)
})
afterAll(async () => {
  await env.close()
})

const login = (username: string, password: string, app = env.app, headers: Record<string, string> = {}) =>
  call(app, 'POST', '/user/login', { body: { username, password }, headers })

async function expectLimited(response: Response) {
  await expectError(response, 429, 'too_many_attempts')
  const retryAfter = Number(response.headers.get('retry-after'))
  expect(Number.isInteger(retryAfter)).toBe(true)
  expect(retryAfter).toBeGreaterThan(0)
  expect(retryAfter).toBeLessThanOrEqual(15 * 60)
  expect(response.headers.getSetCookie()).toHaveLength(0)
}

describe('per-account failure limit', () => {
  test('the 4th failed attempt gets 429 with Retry-After, and so does the right password', async () => {
    for (let i = 0; i < 3; i++) await expectError(await login('sara', `wrong-${i}`), 401, 'invalid_credentials')
    await expectLimited(await login('sara', 'wrong-3'))
    await expectLimited(await login('sara', 'sara-password-1'))
    // The username's case does not open a second counter.
    await expectLimited(await login('SARA', 'sara-password-1'))
  })

  test('a different account is not affected', async () => {
    expect((await login('tomas', 'tomas-password-1')).status).toBe(200)
    await expectError(await login('tomas', 'wrong'), 401)
  })

  test('unknown usernames are limited alike, so the limit reveals nothing', async () => {
    for (let i = 0; i < 3; i++) await expectError(await login('nobody-at-all', `wrong-${i}`), 401)
    await expectLimited(await login('nobody-at-all', 'wrong'))
  })

  test('a success clears the counter before the limit is reached', async () => {
    for (let i = 0; i < 2; i++) await expectError(await login('uma', `wrong-${i}`), 401)
    expect((await login('uma', 'uma-password-1')).status).toBe(200)
    for (let i = 0; i < 2; i++) await expectError(await login('uma', `again-wrong-${i}`), 401)
    expect((await login('uma', 'uma-password-1')).status).toBe(200)
  })
})

describe('attempts counted before the password is checked', () => {
  test('a burst of parallel guesses meets the limit as a sequence does', async () => {
    await registerUser(env, 'vera', 'vera-password-1')
    const statuses = (
      await Promise.all(Array.from({ length: 20 }, (_, i) => login('vera', `parallel-guess-${i}`)))
    ).map((r) => r.status)
    expect(statuses.filter((s) => s === 401)).toHaveLength(3)
    expect(statuses.filter((s) => s === 429)).toHaveLength(17)
    await expectLimited(await login('vera', 'vera-password-1'))
  })

  test('successes are given back: after many logins, parallel up to the limit, failures still get 3 tries', async () => {
    await registerUser(env, 'walt', 'walt-password-1')
    for (let round = 0; round < 3; round++) {
      const statuses = (await Promise.all(Array.from({ length: 3 }, () => login('walt', 'walt-password-1')))).map(
        (r) => r.status,
      )
      expect(statuses).toEqual([200, 200, 200])
    }
    for (let i = 0; i < 3; i++) await expectError(await login('walt', `wrong-${i}`), 401)
    await expectLimited(await login('walt', 'wrong'))
  })

  test('an attempt that ends in a database outage is given back', async () => {
    await registerUser(env, 'xena', 'xena-password-1')
    const url = databaseUrlFor('tessera').replace(/:\d+\//, `:${freePort()}/`)
    const database = createDatabase(url, { max: 1 })
    try {
      const dead = createAppWith(env, { DATABASE_URL: url, LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' }, { db: database.db })
      for (let i = 0; i < 5; i++) expect((await login('xena', 'xena-password-1', dead)).status).toBe(503)
    } finally {
      await database.close()
    }
    for (let i = 0; i < 3; i++) await expectError(await login('xena', `wrong-${i}`), 401)
    await expectLimited(await login('xena', 'wrong'))
  })
})

describe('behind a trusted proxy', () => {
  test("an attacker's failures lock out the attacker's address, not the victim's", async () => {
    const proxied = createAppWith(env, {
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '3',
      TRUST_PROXY: 'true',
    })
    const attacker = { 'x-forwarded-for': '203.0.113.9' }
    const victim = { 'x-forwarded-for': '198.51.100.7' }
    for (let i = 0; i < 3; i++) await expectError(await login('tomas', `guess-${i}`, proxied, attacker), 401)
    await expectLimited(await login('tomas', 'tomas-password-1', proxied, attacker))
    expect((await login('tomas', 'tomas-password-1', proxied, victim)).status).toBe(200)
    // A spoofed first hop does not help: only the last one (our proxy's) counts.
    await expectLimited(
      await login('tomas', 'tomas-password-1', proxied, { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' }),
    )
  })
})

describe('the counters themselves', () => {
  // The login failure counters; not the markers beside them (":n", which note a window's first
  // refusal) nor the registration counters (rl:r:, with a window of their own).
  const LOGIN_COUNTER = /\{rl\}:(a:[^:]+|ai:[^:]+:[^:]+|i:[^:]+)$/
  const counters = async () => {
    const keys = (await scanKeys(env.redis, env.prefix)).filter((key) => LOGIN_COUNTER.test(key)).sort()
    const values = await Promise.all(keys.map(async (key) => [key, await env.redis.get(key)] as const))
    return Object.fromEntries(values)
  }

  test('a refused attempt counts nothing and creates no counter', async () => {
    await registerUser(env, 'yuri', 'yuri-password-1')
    for (let i = 0; i < 3; i++) await expectError(await login('yuri', `wrong-${i}`), 401)
    const before = await counters()
    // Refused from this client (its account-and-client counter is full), though the per-client
    // counter of another address would have room: nothing moves.
    await expectLimited(await login('yuri', 'wrong-again'))
    await expectLimited(await login('yuri', 'yuri-password-1'))
    expect(await counters()).toEqual(before)
  })

  test('every counter left behind holds a failure and expires within the window; a success leaves none at zero', async () => {
    await registerUser(env, 'zeno', 'zeno-password-1')
    await expectError(await login('zeno', 'wrong'), 401)
    expect((await login('zeno', 'zeno-password-1')).status).toBe(200)
    const left = await counters()
    expect(Object.keys(left).length).toBeGreaterThan(0)
    const wrong: { key: string; count: number; ttl: number }[] = []
    for (const [key, value] of Object.entries(left)) {
      const ttl = await env.redis.pttl(key)
      if (!(Number(value) > 0 && ttl > 0 && ttl <= 15 * 60_000)) wrong.push({ key, count: Number(value), ttl })
    }
    expect(wrong).toEqual([])
  })
})

describe('a fresh instance', () => {
  test('its first login, while other commands share the auto-pipeline, is counted and crashes nothing', async () => {
    const fresh = createRedis(REDIS_URL)
    await connectRedis(fresh)
    try {
      const ctx = createContext({ config: env.config, db: env.database.db, redis: fresh, logger: silentLogger })
      // A command opens this turn's auto-pipeline; a script defined after it was opened is unknown
      // to it, and ioredis then throws from a later turn, which ends the process
      // (https://github.com/redis/ioredis/issues/1931). The limiter's scripts must exist before.
      const other = fresh.get(`${env.prefix}unrelated`)
      const keys = loginLimitKeys(ctx, 'first-login', '192.0.2.7')
      expect(await reserveLoginAttempt(ctx, keys)).toBeUndefined()
      expect(await other).toBeNull()
      await releaseLoginAttempt(ctx, keys, true)
      await Bun.sleep(20)
    } finally {
      fresh.disconnect()
    }
  })
})

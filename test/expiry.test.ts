// Idle and absolute session lifetimes, enforced server-side with the injected clock (ASVS 7.3.1,
// 7.3.2), and the last-seen write done at most once per touch interval.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { hashToken, parseSession } from '../src/store'
import { call, createTestEnv, loginAs, registerUser, type TestEnv, tokenOf } from './helpers'

const SECOND = 1000
const MINUTE = 60 * SECOND

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('expiry', { SESSION_IDLE_TIMEOUT: '1m', SESSION_ABSOLUTE_TIMEOUT: '5m' })
  await registerUser(env, 'erin', 'erin-password-1')
})
afterAll(async () => {
  await env.close()
})

const me = async (cookie: string) => (await call(env.app, 'GET', '/user/me', { cookie })).status
const login = () => loginAs(env, 'erin', 'erin-password-1')
const sessionKey = async (cookie: string) => env.ctx.store.keys.session(0, await hashToken(tokenOf(cookie)))

describe('configuration', () => {
  test('the overrides are in force and the touch interval is a few seconds', () => {
    expect(env.config.sessionIdleTimeoutMs).toBe(MINUTE)
    expect(env.config.sessionAbsoluteTimeoutMs).toBe(5 * MINUTE)
    expect(env.config.sessionTouchIntervalMs).toBe(5 * SECOND)
  })
})

describe('idle timeout', () => {
  test('activity within the idle window keeps the session alive past one idle period', async () => {
    const cookie = await login()
    for (let i = 0; i < 4; i++) {
      env.clock.advance(40 * SECOND)
      expect(await me(cookie)).toBe(200)
    }
    // 160 s since login, well past the 60 s idle timeout, yet alive.
  })

  test('no activity for the idle timeout answers 401, and the session is removed from Redis', async () => {
    const cookie = await login()
    const key = await sessionKey(cookie)
    env.clock.advance(59 * SECOND)
    expect(await me(cookie)).toBe(200)
    env.clock.advance(MINUTE)
    expect(await me(cookie)).toBe(401)
    // The expired session is cleaned up off the request path.
    for (let i = 0; i < 50 && (await env.redis.exists(key)) === 1; i++) await Bun.sleep(10)
    expect(await env.redis.exists(key)).toBe(0)
    // And stays dead, even if the clock were to look kind again.
    expect(await me(cookie)).toBe(401)
  })

  test('exactly at the idle timeout the session is over', async () => {
    const cookie = await login()
    env.clock.advance(MINUTE)
    expect(await me(cookie)).toBe(401)
  })
})

describe('absolute lifetime', () => {
  test('ends the session at 5 minutes even with continuous activity', async () => {
    const cookie = await login()
    let elapsed = 0
    while (elapsed + 30 * SECOND < 5 * MINUTE) {
      env.clock.advance(30 * SECOND)
      elapsed += 30 * SECOND
      expect(await me(cookie)).toBe(200)
    }
    env.clock.advance(5 * MINUTE - elapsed)
    expect(await me(cookie)).toBe(401)
    // A fresh login works again.
    expect(await me(await login())).toBe(200)
  })
})

describe('touch (last-seen write)', () => {
  test('happens at most once per touch interval', async () => {
    const cookie = await login()
    const key = await sessionKey(cookie)
    const lastSeen = async () => parseSession(0, '', await env.redis.get(key))?.lastSeenAt
    const loginAt = env.clock.now
    expect(await lastSeen()).toBe(loginAt)

    env.clock.advance(1 * SECOND)
    expect(await me(cookie)).toBe(200)
    expect(await lastSeen()).toBe(loginAt)

    env.clock.advance(3_900)
    expect(await me(cookie)).toBe(200)
    expect(await me(cookie)).toBe(200)
    expect(await lastSeen()).toBe(loginAt)

    env.clock.advance(100) // 5 s after login: due
    expect(await me(cookie)).toBe(200)
    const touchedAt = env.clock.now
    expect(await lastSeen()).toBe(touchedAt)

    env.clock.advance(1 * SECOND)
    expect(await me(cookie)).toBe(200)
    expect(await lastSeen()).toBe(touchedAt)

    env.clock.advance(4 * SECOND)
    expect(await me(cookie)).toBe(200)
    expect(await lastSeen()).toBe(env.clock.now)
  })

  test('a touch refreshes the key TTL to the idle timeout, never past the absolute expiry', async () => {
    const cookie = await login()
    const key = await sessionKey(cookie)
    env.clock.advance(10 * SECOND)
    expect(await me(cookie)).toBe(200)
    const ttl = await env.redis.pttl(key)
    expect(ttl).toBeGreaterThan(MINUTE - 5 * SECOND)
    expect(ttl).toBeLessThanOrEqual(MINUTE)

    // Keep it busy until 20 s before the absolute expiry: the TTL is capped at what is left.
    for (let i = 0; i < 5; i++) {
      env.clock.advance(50 * SECOND)
      expect(await me(cookie)).toBe(200)
    }
    env.clock.advance(20 * SECOND) // 4 min 40 s after login
    expect(await me(cookie)).toBe(200)
    const capped = await env.redis.pttl(key)
    expect(capped).toBeGreaterThan(0)
    expect(capped).toBeLessThanOrEqual(20 * SECOND)
  })
})

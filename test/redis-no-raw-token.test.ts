// Redis never holds a session token in clear, only its SHA-256 (ASVS 16.2.5): every key and every
// value of every type under this file's prefix is read back and searched.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type Redis from 'ioredis'
import { hashToken } from '../src/store'
import { ADMIN_PASSWORD, call, createTestEnv, loginAs, registerUser, scanKeys, type TestEnv, tokenOf } from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('no-raw-token')
})
afterAll(async () => {
  await env.close()
})

/** Every string Redis holds under the prefix: key names, and each value read by its type. */
async function dumpPrefix(redis: Redis, prefix: string): Promise<{ keys: string[]; values: string[] }> {
  const keys = await scanKeys(redis, prefix)
  const values: string[] = []
  for (const key of keys) {
    const type = await redis.type(key)
    switch (type) {
      case 'string':
        values.push((await redis.get(key)) ?? '')
        break
      case 'hash':
        for (const [field, value] of Object.entries(await redis.hgetall(key))) values.push(field, value)
        break
      case 'zset':
        values.push(...(await redis.zrange(key, 0, -1, 'WITHSCORES')))
        break
      case 'set':
        values.push(...(await redis.smembers(key)))
        break
      case 'list':
        values.push(...(await redis.lrange(key, 0, -1)))
        break
      case 'stream':
        for (const [id, fields] of await redis.xrange(key, '-', '+')) values.push(id, ...fields)
        break
      case 'none':
        break
      default:
        throw new Error(`key ${key} has type ${type}, which this test does not read yet`)
    }
  }
  return { keys, values }
}

describe('no raw token in Redis', () => {
  test('after logins, fixation, grants, revokes, failures and logouts, only hashes are stored', async () => {
    await registerUser(env, 'dora', 'dora-password-1')
    const tokens: string[] = []
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    tokens.push(tokenOf(admin))
    const dora1 = await loginAs(env, 'dora', 'dora-password-1')
    const dora2 = await loginAs(env, 'dora', 'dora-password-1')
    tokens.push(tokenOf(dora1), tokenOf(dora2))

    // Live permission changes rewrite dora's sessions and write stream events.
    for (const path of ['/user/assign', '/user/unassign', '/user/assign']) {
      const response = await call(env.app, 'POST', path, {
        body: { username: 'dora', permission: 'user:read' },
        cookie: admin,
      })
      expect(response.status).toBe(200)
    }
    // A failed login (stream event and rate-limit counters), and a login replacing a session.
    const failed = await call(env.app, 'POST', '/user/login', {
      body: { username: 'dora', password: 'not-her-password' },
      cookie: dora2,
    })
    expect(failed.status).toBe(401)
    const replaced = await call(env.app, 'POST', '/user/login', {
      body: { username: 'dora', password: 'dora-password-1' },
      cookie: dora2,
    })
    expect(replaced.status).toBe(200)
    const dora3 = replaced.headers.getSetCookie()[0]?.split(';')[0] as string
    tokens.push(tokenOf(dora3))
    // Authenticated requests (and the touch they may write).
    env.clock.advance(10_000)
    expect((await call(env.app, 'GET', '/user/me', { cookie: dora3 })).status).toBe(200)
    // A logout.
    expect((await call(env.app, 'POST', '/user/logout', { cookie: dora1 })).status).toBe(200)

    const { keys, values } = await dumpPrefix(env.redis, env.prefix)
    expect(keys.length).toBeGreaterThan(3)
    expect(keys.some((k) => k.endsWith('events'))).toBe(true)
    expect(new Set(tokens).size).toBe(4)
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
      for (const key of keys) expect(key).not.toContain(token)
      for (const value of values) expect(value).not.toContain(token)
    }

    // The live sessions are named by the SHA-256 (base64url, truncated to 128 bits) of their tokens.
    for (const live of [admin, dora3]) {
      const hash = await hashToken(tokenOf(live))
      expect(hash).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(keys).toContain(env.ctx.store.keys.session(0, hash))
    }
    // The ended ones are gone, key and index entry alike.
    for (const dead of [dora1, dora2]) {
      const hash = await hashToken(tokenOf(dead))
      expect(keys).not.toContain(env.ctx.store.keys.session(0, hash))
    }
  })

  test('after logout the old cookie gets 401, and its key is gone', async () => {
    const cookie = await loginAs(env, 'admin', ADMIN_PASSWORD)
    const key = env.ctx.store.keys.session(0, await hashToken(tokenOf(cookie)))
    expect(await env.redis.exists(key)).toBe(1)
    expect((await call(env.app, 'GET', '/user/me', { cookie })).status).toBe(200)
    const logout = await call(env.app, 'POST', '/user/logout', { cookie })
    expect(await logout.json()).toEqual({ loggedOut: true })
    expect((await call(env.app, 'GET', '/user/me', { cookie })).status).toBe(401)
    expect(await env.redis.exists(key)).toBe(0)
    // A second logout with the dead cookie is harmless.
    expect(await (await call(env.app, 'POST', '/user/logout', { cookie })).json()).toEqual({ loggedOut: false })
  })
})

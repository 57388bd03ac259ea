// The exported verifier (tessera/verify) and its Elysia plugin (tessera/elysia): in-process, in a
// separate process that has nothing but the verifier and ioredis, and its import graph.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { isBuiltin } from 'node:module'
import { join } from 'node:path'
import { Elysia } from 'elysia'
import { verifySession as verifyFromPackage } from 'tessera/verify'
import { cookieFromHeader, verifySession } from '../src/verify'
import { tesseraAuth } from '../src/verify-elysia'
import { ADMIN_PASSWORD, call, createTestEnv, loginAs, REDIS_URL, registerUser, type TestEnv, tokenOf } from './helpers'

let env: TestEnv
let alice: string
let aliceId: number
const PASSWORD = 'correct horse battery'
const ROOT = join(import.meta.dir, '..')

beforeAll(async () => {
  env = await createTestEnv('verify')
  aliceId = (await registerUser(env, 'alice', PASSWORD)).id
  alice = await loginAs(env, 'alice', PASSWORD)
})
afterAll(async () => {
  await env.close()
})

const options = () => ({ prefix: env.prefix, now: env.clock.now })

describe('verifySession', () => {
  test('returns the user, permissions and both expiries for a live cookie', async () => {
    const session = await verifySession(env.redis, tokenOf(alice), options())
    expect(session).toMatchObject({ userId: aliceId, username: 'alice', permissions: [] })
    expect(session?.expiresAt).toBe(env.clock.now + env.config.sessionAbsoluteTimeoutMs)
    expect(session?.idleExpiresAt).toBeGreaterThan(env.clock.now)
    expect(session?.idleExpiresAt).toBeLessThanOrEqual(env.clock.now + env.config.sessionIdleTimeoutMs)
    expect(session?.sessionId).toMatch(/^[A-Za-z0-9_-]{16}$/)
    expect(JSON.stringify(session)).not.toContain(tokenOf(alice))
    // The package export is the same function.
    expect(verifyFromPackage).toBe(verifySession)
  })

  test('null for malformed, unknown or foreign-prefix cookies', async () => {
    for (const value of [undefined, '', '*', 'x'.repeat(4000), 'A'.repeat(43), 'é'.repeat(43)]) {
      expect(await verifySession(env.redis, value, options())).toBeNull()
    }
    expect(await verifySession(env.redis, tokenOf(alice), { ...options(), prefix: 'someone-else:' })).toBeNull()
  })

  test('honours the absolute limit from the record and the idle limit from last-seen', async () => {
    const cookie = await loginAs(env, 'alice', PASSWORD)
    const token = tokenOf(cookie)
    const fresh = await verifySession(env.redis, token, options())
    if (!fresh) throw new Error('expected a live session')
    // Absolute: at the recorded expiry it is over, whatever the key's TTL says.
    expect(await verifySession(env.redis, token, { ...options(), now: fresh.expiresAt })).toBeNull()
    expect(await verifySession(env.redis, token, { ...options(), now: fresh.expiresAt - 1 })).not.toBeNull()
    // Idle: with the idle timeout given, last-seen plus the timeout is the limit.
    const idle = env.config.sessionIdleTimeoutMs
    expect(
      await verifySession(env.redis, token, { ...options(), idleTimeoutMs: idle, now: env.clock.now + idle }),
    ).toBeNull()
    expect(
      await verifySession(env.redis, token, { ...options(), idleTimeoutMs: idle, now: env.clock.now + idle - 1 }),
    ).not.toBeNull()
    // Without it, the key's TTL decides: once Redis expires the key, the session is gone.
    await env.redis.pexpire(env.ctx.store.keys.session(0, await sha256(token)), 1)
    await Bun.sleep(5)
    expect(await verifySession(env.redis, token, options())).toBeNull()
  })

  test('null after logout; permission changes show at once', async () => {
    const cookie = await loginAs(env, 'alice', PASSWORD)
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    const body = { username: 'alice', permission: 'user:read' }
    expect((await call(env.app, 'POST', '/user/assign', { cookie: admin, body })).status).toBe(200)
    expect((await verifySession(env.redis, tokenOf(cookie), options()))?.permissions).toEqual(['user:read'])
    expect((await call(env.app, 'POST', '/user/unassign', { cookie: admin, body })).status).toBe(200)
    expect((await verifySession(env.redis, tokenOf(cookie), options()))?.permissions).toEqual([])
    expect((await call(env.app, 'POST', '/user/logout', { cookie })).status).toBe(200)
    expect(await verifySession(env.redis, tokenOf(cookie), options())).toBeNull()
  })

  test('cookieFromHeader picks the named cookie out of a Cookie header', () => {
    expect(cookieFromHeader('a=1; sid=abc; b=2', 'sid')).toBe('abc')
    expect(cookieFromHeader('xsid=abc', 'sid')).toBeUndefined()
    expect(cookieFromHeader(null, 'sid')).toBeUndefined()
  })
})

/** The session key's hash: the first 22 base64url characters of SHA-256 (src/store/token.ts). */
async function sha256(token: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))
  return Buffer.from(digest).toString('base64url').slice(0, 22)
}

describe('tesseraAuth (Elysia plugin for other services)', () => {
  const service = () =>
    new Elysia()
      .use(
        tesseraAuth({
          redis: env.redis,
          prefix: env.prefix,
          cookieName: env.config.cookieName,
          now: () => env.clock.now,
        }),
      )
      .get('/me', ({ session }) => ({ id: session.userId, name: session.username }), { auth: true })
      .get('/reports', ({ session }) => session.username, { permission: 'audit:read' })
      .get('/public', () => 'ok')

  test('auth: 401 without a valid session, the session with one', async () => {
    const app = service()
    expect((await call(app, 'GET', '/me')).status).toBe(401)
    expect((await call(app, 'GET', '/me', { cookie: `${env.config.cookieName}=nonsense` })).status).toBe(401)
    const response = await call(app, 'GET', '/me', { cookie: alice })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ id: aliceId, name: 'alice' })
    expect((await call(app, 'GET', '/public')).status).toBe(200)
  })

  test('permission: 401 without a session, 403 without the permission, 200 with it (superuser too)', async () => {
    const app = service()
    expect((await call(app, 'GET', '/reports')).status).toBe(401)
    expect((await call(app, 'GET', '/reports', { cookie: alice })).status).toBe(403)
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    const response = await call(app, 'GET', '/reports', { cookie: admin })
    expect(response.status).toBe(200)
    expect(await response.text()).toBe('admin')
  })

  test('a route with both macros reads Redis once per request', async () => {
    let reads = 0
    // The real client, with its transactions counted: verifySession reads through multi().
    const counted = new Proxy(env.redis, {
      get(target, key, receiver) {
        if (key === 'multi') reads++
        const value = Reflect.get(target, key, receiver)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const app = new Elysia()
      .use(
        tesseraAuth({
          redis: counted,
          prefix: env.prefix,
          cookieName: env.config.cookieName,
          now: () => env.clock.now,
        }),
      )
      .get('/both', ({ session }) => session.username, { auth: true, permission: 'audit:read' })
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    const response = await call(app, 'GET', '/both', { cookie: admin })
    expect(response.status).toBe(200)
    expect(await response.text()).toBe('admin')
    expect(reads).toBe(1)
    expect((await call(app, 'GET', '/both', { cookie: alice })).status).toBe(403)
    expect(reads).toBe(2)
  })
})

describe('a separate process with only the verifier and ioredis', () => {
  async function verifyInChild(cookie: string) {
    const child = Bun.spawn(['bun', join(ROOT, 'test/fixtures/verify-cookie.ts')], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL, TESSERA_PREFIX: env.prefix, TESSERA_COOKIE: tokenOf(cookie) },
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const [out, err, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ])
    expect(err).toBe('')
    expect(code).toBe(0)
    return (JSON.parse(out) as { session: { userId: number; username: string } | null }).session
  }

  test('accepts a live cookie and rejects it after logout', async () => {
    const cookie = await loginAs(env, 'alice', PASSWORD)
    expect(await verifyInChild(cookie)).toMatchObject({ userId: aliceId, username: 'alice' })
    expect((await call(env.app, 'POST', '/user/logout', { cookie })).status).toBe(200)
    expect(await verifyInChild(cookie)).toBeNull()
  })
})

describe('import graph', () => {
  async function importsOf(entry: string): Promise<string[]> {
    const result = await Bun.build({ entrypoints: [join(ROOT, entry)], target: 'bun', packages: 'external' })
    expect(result.success).toBe(true)
    const text = (await Promise.all(result.outputs.map((o) => o.text()))).join('\n')
    return [...new Set([...text.matchAll(/from\s*["']([^"']+)["']/g)].map((m) => m[1] as string))].sort()
  }

  test('tessera/verify needs only ioredis: no Elysia, no PostgreSQL', async () => {
    const imports = await importsOf('src/verify.ts')
    // ioredis is imported for its types only; the caller brings its own client.
    expect(imports.filter((name) => !isBuiltin(name))).toEqual([])
    expect(imports.join(' ')).not.toMatch(/elysia|drizzle|postgres/)
  })

  test('tessera/elysia adds only Elysia', async () => {
    const imports = await importsOf('src/verify-elysia.ts')
    expect(imports.filter((name) => !isBuiltin(name))).toEqual(['elysia'])
  })
})

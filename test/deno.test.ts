// The same app on Deno 2: src/deno.ts, started with the flags of deno.json's start task on a
// database it creates itself, answers the proof of concept's sequence, the cookie flow and /swagger
// as the Bun server does; it shares sessions, password hashes and the event stream with a Bun app
// over the same Redis and PostgreSQL; and tessera/verify runs in a Deno process.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type Redis from 'ioredis'
import { type App, createApp } from '../src/app'
import { storeFor } from '../src/context'
import { createDatabase, type Database } from '../src/db/client'
import { silentLogger } from '../src/lib/logger'
import { connectRedis, createRedis, hashToken } from '../src/store'
import { ADMIN_PASSWORD, call, databaseUrlFor, deleteKeys, REDIS_URL, testConfig } from './helpers'
import { cookieFrom, http, loginVia, msUntilStatus, runToEnd, type ServerProcess, startServer } from './processes'
import { suffix } from './services'

const ROOT = join(import.meta.dir, '..')

/** The binary of the `deno` devDependency, found by the package's own installer (its platform package; no download). */
function denoExecutable(): string {
  const { runInstall } = createRequire(import.meta.url)('deno/install_api.cjs') as { runInstall(): string }
  return runInstall()
}

/**
 * deno.json's start task, run by the binary itself. Through `deno task`, the npm package's shim in
 * node_modules/.bin would stand between the task and the server, and a test stops what it starts by PID.
 */
function startTaskCommand(): string[] {
  const task = (JSON.parse(readFileSync(join(ROOT, 'deno.json'), 'utf8')) as { tasks: { start: string } }).tasks.start
  const [program, ...args] = task.split(/\s+/)
  if (program !== 'deno') throw new Error(`deno.json's start task is not one plain deno command: ${task}`)
  return [denoExecutable(), ...args]
}

const databaseName = `tessera_test_deno_${suffix()}`
const databaseUrl = databaseUrlFor(databaseName)
const prefix = `test:deno:${suffix()}:`
let deno: ServerProcess
/** A Bun app in this process over the same database, Redis and prefix. */
let bun: App
let redis: Redis
let database: Database
/** The Deno server's settings (startServer runs it with COOKIE_SECURE=false: the cookie is `sid`). */
const config = () => testConfig(databaseUrl, prefix, { COOKIE_SECURE: 'false' })

beforeAll(async () => {
  // The database does not exist yet: the Deno server creates, migrates and seeds it.
  deno = await startServer(
    { DATABASE_URL: databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: prefix, NO_COLOR: '1' },
    { command: startTaskCommand() },
  )
  redis = createRedis(REDIS_URL)
  await connectRedis(redis)
  database = createDatabase(databaseUrl, { max: 2 })
  bun = createApp({ config: config(), db: database.db, redis, logger: silentLogger })
})

afterAll(async () => {
  await deno?.stop()
  if (redis) {
    await deleteKeys(redis, prefix)
    await redis.quit()
  }
  await database?.close()
  const admin = createDatabase(databaseUrlFor('postgres'), { max: 1 })
  try {
    await admin.sql.unsafe(`drop database if exists "${databaseName}" with (force)`)
  } finally {
    await admin.close()
  }
})

const register = async (username: string, password: string) =>
  expect((await http(deno.url, 'POST', '/user', { body: { username, password } })).status).toBe(201)

describe('the Deno server answers as the Bun server does', () => {
  test('the proof of concept sequence: 401, 201, 200, 403, 200, and the grant reaches the live session', async () => {
    const grant = { username: 'bob', permission: 'user:assign' }
    expect((await http(deno.url, 'POST', '/user/assign', { body: grant })).status).toBe(401)
    await register('bob', 'bob-password-1')
    const bob = await loginVia(deno.url, 'bob', 'bob-password-1')
    expect((await http(deno.url, 'POST', '/user/assign', { body: grant, cookie: bob })).status).toBe(403)
    const admin = await loginVia(deno.url, 'admin', ADMIN_PASSWORD)
    expect((await http(deno.url, 'POST', '/user/assign', { body: grant, cookie: admin })).status).toBe(200)

    const me = await http(deno.url, 'GET', '/user/me', { cookie: bob })
    expect(((await me.json()) as { permissions: string[] }).permissions).toContain('user:assign')
    expect((await http(deno.url, 'POST', '/user/assign', { body: grant, cookie: bob })).status).toBe(200)
    expect((await http(deno.url, 'POST', '/user/unassign', { body: grant, cookie: admin })).status).toBe(200)
    expect((await http(deno.url, 'POST', '/user/assign', { body: grant, cookie: bob })).status).toBe(403)
  })

  test('the cookie flow: login sets the HttpOnly cookie, /user/me 200 with it, logout clears it, then 401', async () => {
    await register('carol', 'carol-password-1')
    const login = await http(deno.url, 'POST', '/user/login', {
      body: { username: 'carol', password: 'carol-password-1' },
    })
    expect(login.status).toBe(200)
    const [setCookie = ''] = login.headers.getSetCookie()
    expect(setCookie).toMatch(/^sid=[A-Za-z0-9_-]{43};/)
    expect(setCookie).toContain('HttpOnly')
    expect(setCookie).toContain('SameSite=Lax')
    const cookie = cookieFrom(login)

    const me = await http(deno.url, 'GET', '/user/me', { cookie })
    expect(me.status).toBe(200)
    expect(((await me.json()) as { username: string }).username).toBe('carol')

    const logout = await http(deno.url, 'POST', '/user/logout', { cookie })
    expect(logout.status).toBe(200)
    expect(logout.headers.getSetCookie()[0]).toMatch(/^sid=;.*Max-Age=0/)
    expect((await http(deno.url, 'GET', '/user/me', { cookie })).status).toBe(401)
  })

  test('/swagger is the HTML page under its CSP, its assets are served, and /swagger/json is the spec', async () => {
    const page = await http(deno.url, 'GET', '/swagger')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self' 'sha256-")
    const html = await page.text()
    const assets = [...html.matchAll(/\b(?:src|href)="(\/swagger\/assets\/[^"]+)"/g)].map(([, url]) => url as string)
    expect(assets.length).toBeGreaterThanOrEqual(2)
    for (const asset of assets) {
      const response = await http(deno.url, 'GET', asset)
      expect(response.status).toBe(200)
      expect(response.headers.get('content-type')).toMatch(/javascript|text\/css|image\/png/)
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(1000)
    }

    const spec = await http(deno.url, 'GET', '/swagger/json')
    expect(spec.status).toBe(200)
    const document = (await spec.json()) as {
      paths: Record<string, unknown>
      components: { securitySchemes: Record<string, { name: string }> }
    }
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/user/login', '/user/me', '/user/assign']))
    expect(document.components.securitySchemes.sessionCookie?.name).toBe('sid')
  })

  test('the client address comes from Deno.serve (sessions list it; rate limits count by it)', async () => {
    await register('dave', 'dave-password-1')
    const cookie = await loginVia(deno.url, 'dave', 'dave-password-1')
    const sessions = await http(deno.url, 'GET', '/sessions', { cookie })
    expect(sessions.status).toBe(200)
    const listed = (await sessions.json()) as { sessions: { ip: string }[] }
    expect(listed.sessions.map((session) => session.ip)).toEqual(['127.0.0.1'])
  })
})

describe('Bun and Deno share one deployment', () => {
  test('a user registered on Deno logs in on Bun (same argon2id hashes), and each accepts the other’s cookie', async () => {
    await register('erin', 'erin-password-1')
    const login = await call(bun, 'POST', '/user/login', { body: { username: 'erin', password: 'erin-password-1' } })
    expect(login.status).toBe(200)
    const fromBun = cookieFrom(login)
    expect((await http(deno.url, 'GET', '/user/me', { cookie: fromBun })).status).toBe(200)
    const fromDeno = await loginVia(deno.url, 'erin', 'erin-password-1')
    expect((await call(bun, 'GET', '/user/me', { cookie: fromDeno })).status).toBe(200)
  })

  test('the Deno server caches sessions and its event tailer evicts them: a logout through Bun binds at once', async () => {
    await register('frank', 'frank-password-1')
    const store = storeFor(config(), redis)
    // Cached: with the session's key deleted behind its back (no event), Deno still answers from
    // its cache, which it trusts only while its tailer reads the event stream. A loaded machine may
    // let that lease lapse for a moment, so a few tries.
    let servedFromCache = false
    for (let trial = 0; trial < 3 && !servedFromCache; trial++) {
      const cookie = await loginVia(deno.url, 'frank', 'frank-password-1')
      for (let warm = 0; warm < 2; warm++) await http(deno.url, 'GET', '/user/me', { cookie })
      await redis.del(store.keys.session(0, hashToken(cookie.slice(cookie.indexOf('=') + 1))))
      servedFromCache = (await http(deno.url, 'GET', '/user/me', { cookie })).status === 200
    }
    expect(servedFromCache).toBe(true)

    // Evicted: a logout through Bun reaches Deno's cache through the event stream.
    const cookie = await loginVia(deno.url, 'frank', 'frank-password-1')
    for (let warm = 0; warm < 2; warm++) {
      expect((await http(deno.url, 'GET', '/user/me', { cookie })).status).toBe(200)
    }
    expect((await call(bun, 'POST', '/user/logout', { cookie })).status).toBe(200)
    const elapsed = await msUntilStatus(() => http(deno.url, 'GET', '/user/me', { cookie }), 401, 2_000)
    expect(elapsed).toBeLessThan(1_000)
  })
})

describe('tessera/verify on Deno', () => {
  /** test/fixtures/verify-cookie.ts (only the verifier and ioredis) in a Deno process with no other rights. */
  async function verifyOnDeno(cookie: string) {
    const { host } = new URL(REDIS_URL)
    const { code, stdout, stderr } = await runToEnd(
      [denoExecutable(), 'run', '--allow-env', `--allow-net=${host}`, 'test/fixtures/verify-cookie.ts'],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/root',
          NO_COLOR: '1',
          REDIS_URL,
          TESSERA_PREFIX: prefix,
          TESSERA_COOKIE: cookie.slice(cookie.indexOf('=') + 1),
        },
      },
    )
    expect({ code, err: stderr }).toEqual({ code: 0, err: '' })
    return (JSON.parse(stdout) as { session: { username: string } | null }).session
  }

  test('accepts a cookie the Bun app made, and rejects it after logout', async () => {
    await register('grace', 'grace-password-1')
    const login = await call(bun, 'POST', '/user/login', { body: { username: 'grace', password: 'grace-password-1' } })
    const cookie = cookieFrom(login)
    expect(await verifyOnDeno(cookie)).toMatchObject({ username: 'grace' })
    expect((await call(bun, 'POST', '/user/logout', { cookie })).status).toBe(200)
    expect(await verifyOnDeno(cookie)).toBeNull()
  })
})

describe('stopping', () => {
  test('on SIGTERM the Deno server ends its loops, closes its clients and exits 0', async () => {
    const started = performance.now()
    await deno.stop()
    expect(deno.proc.exitCode).toBe(0)
    expect(performance.now() - started).toBeLessThan(5_000)
  })
})

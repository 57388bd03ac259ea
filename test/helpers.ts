// Test harness: every test file gets its own PostgreSQL database and Redis key prefix, on the real
// local servers, and removes both when it is done. Development data is never touched.

import { expect } from 'bun:test'
import type Redis from 'ioredis'
import { createApp } from '../src/app'
import { type Config, loadConfig } from '../src/config'
import { type AppContext, type AppDeps, createContext } from '../src/context'
import { createDatabase, type Database } from '../src/db/client'
import { silentLogger } from '../src/lib/logger'
import { runAuditConsumer } from '../src/modules/audit/consumer'
import { seedDatabase } from '../src/modules/users/seed'
import { type AuthEvent, connectRedis, createRedis, decodeEvent } from '../src/store'
import { ADMIN_PASSWORD, createTestDatabase, deleteKeys, REDIS_URL, suffix } from './services'

// Re-exported so that a test file finds the whole harness in one import.
export {
  ADMIN_PASSWORD,
  createTestDatabase,
  databaseUrlFor,
  deleteKeys,
  freePort,
  PG_BASE,
  REDIS_URL,
} from './services'

export interface TestEnv {
  config: Config
  ctx: AppContext
  app: ReturnType<typeof createApp>
  redis: Redis
  database: Database
  databaseUrl: string
  prefix: string
  clock: { now: number; advance(ms: number): void }
  close(): Promise<void>
}

/** The configuration a test app runs with: its own database and prefix, silent, plain-http cookie. */
export function testConfig(databaseUrl: string, prefix: string, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    ADMIN_PASSWORD,
    LOG_LEVEL: 'silent',
    // Tests register many users from one (in-process: unknown) address; the limit has its own test.
    REGISTRATION_MAX_PER_IP: '1000000',
    ...overrides,
  })
}

/**
 * Builds an in-process app over real Redis and PostgreSQL with an injectable clock. `label` names
 * the database and key prefix so leftovers, if any, are easy to trace to their file.
 */
export async function createTestEnv(label: string, overrides: Record<string, string> = {}): Promise<TestEnv> {
  const db = await createTestDatabase(label)
  const prefix = `test:${label}:${suffix()}:`
  const config = testConfig(db.url, prefix, overrides)
  const redis = createRedis(REDIS_URL)
  await connectRedis(redis)
  const database = createDatabase(db.url, { max: 5 })
  const clock = {
    now: Date.now(),
    advance(ms: number) {
      clock.now += ms
    },
  }
  const deps = { config, db: database.db, redis, logger: silentLogger, now: () => clock.now }
  const ctx = createContext(deps)
  await seedDatabase(ctx)
  const app = createApp(deps)
  return {
    config,
    ctx,
    app,
    redis,
    database,
    databaseUrl: db.url,
    prefix,
    clock,
    async close() {
      await deleteKeys(redis, prefix)
      await redis.quit()
      await database.close()
      await db.drop()
    },
  }
}

export interface CallOptions {
  body?: unknown
  /** Raw body text, sent as is (for malformed JSON). */
  raw?: string
  cookie?: string
  headers?: Record<string, string>
}

/** Sends one request through the app's fetch handler, as a plain HTTP client would. */
export function call(
  app: { handle(request: Request): Promise<Response> },
  method: string,
  path: string,
  options: CallOptions = {},
) {
  const headers = new Headers(options.headers)
  let body: string | undefined = options.raw
  if (options.body !== undefined) {
    body = JSON.stringify(options.body)
  }
  if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json')
  if (options.cookie) headers.set('cookie', options.cookie)
  return app.handle(new Request(`http://localhost${path}`, { method, headers, body }))
}

/** The session token a response set, or undefined. */
export function sessionTokenFrom(response: Response, cookieName: string): string | undefined {
  for (const header of response.headers.getSetCookie()) {
    const [pair] = header.split(';')
    const [name, value] = (pair ?? '').split('=')
    if (name?.trim() === cookieName && value) return value.trim()
  }
  return undefined
}

/** Logs in and returns the `Cookie` header value to send afterwards. */
export async function loginAs(env: TestEnv, username: string, password: string): Promise<string> {
  const response = await call(env.app, 'POST', '/user/login', { body: { username, password } })
  if (response.status !== 200)
    throw new Error(`login as ${username} failed: ${response.status} ${await response.text()}`)
  const token = sessionTokenFrom(response, env.config.cookieName)
  if (!token) throw new Error('login set no session cookie')
  return `${env.config.cookieName}=${token}`
}

export async function registerUser(env: TestEnv, username: string, password = 'correct horse battery') {
  const response = await call(env.app, 'POST', '/user', { body: { username, password } })
  if (response.status !== 201)
    throw new Error(`register ${username} failed: ${response.status} ${await response.text()}`)
  return (await response.json()) as { id: number; username: string }
}

/** Every key under a prefix (SCAN, never KEYS). */
export async function scanKeys(redis: Redis, prefix: string): Promise<string[]> {
  const found = new Set<string>()
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    for (const key of keys) found.add(key)
  } while (cursor !== '0')
  return [...found]
}

/**
 * A second app over the same database, Redis, prefix and clock as `env`, with other settings
 * (e.g. TRUSTED_ORIGINS) or other clients (e.g. a Redis on a dead port).
 */
export function createAppWith(
  env: TestEnv,
  overrides: Record<string, string> = {},
  deps: Partial<Pick<AppDeps, 'redis' | 'db'>> = {},
) {
  return createApp({
    config: testConfig(overrides.DATABASE_URL ?? env.databaseUrl, env.prefix, overrides),
    db: deps.db ?? env.database.db,
    redis: deps.redis ?? env.redis,
    logger: silentLogger,
    now: () => env.clock.now,
  })
}

export interface ErrorBody {
  error: { code: string; message: string; requestId: string; field?: string }
}

/**
 * Asserts the one error shape: the status, JSON, a code, and a request id equal to the
 * X-Request-Id header. Returns the parsed body.
 */
export async function expectError(response: Response, status: number, code?: string): Promise<ErrorBody> {
  expect(response.status).toBe(status)
  expect(response.headers.get('content-type') ?? '').toStartWith('application/json')
  const body = (await response.json()) as ErrorBody
  expect(typeof body.error?.code).toBe('string')
  expect(typeof body.error.message).toBe('string')
  expect(body.error.requestId).toBeTruthy()
  expect(body.error.requestId).toBe(response.headers.get('x-request-id') ?? '')
  if (code !== undefined) expect(body.error.code).toBe(code)
  return body
}

/** The session token inside a `Cookie` header value made by loginAs. */
export const tokenOf = (cookie: string) => cookie.slice(cookie.indexOf('=') + 1)

/** Every entry of every partition's event stream, oldest first. */
export async function streamEntries(env: Pick<TestEnv, 'redis' | 'ctx'>): Promise<[id: string, fields: string[]][]> {
  const { keys } = env.ctx.store
  const streams = await Promise.all(
    Array.from({ length: keys.partitions }, (_, p) => env.redis.xrange(keys.events(p), '-', '+')),
  )
  return streams.flat().sort(([a], [b]) => {
    const [am = 0, as = 0] = a.split('-').map(Number)
    const [bm = 0, bs = 0] = b.split('-').map(Number)
    return am - bm || as - bs
  })
}

/** Every event of every partition's stream, oldest first. */
export async function streamEvents(env: Pick<TestEnv, 'redis' | 'ctx'>): Promise<(AuthEvent | undefined)[]> {
  return (await streamEntries(env)).map(([, fields]) => decodeEvent(fields))
}

/** An audit consumer on the env's stream and database, until `stop()`: for tests reading audit_events. */
export function startAuditConsumer(env: Pick<TestEnv, 'redis' | 'ctx'>): { stop(): Promise<void> } {
  const controller = new AbortController()
  const running = runAuditConsumer({
    redis: env.redis,
    db: env.ctx.db,
    keys: env.ctx.store.keys,
    logger: silentLogger,
    signal: controller.signal,
    consumer: 'test',
    claimIdleMs: 1_000,
    blockMs: 100,
  })
  return {
    async stop() {
      controller.abort()
      await running
    },
  }
}

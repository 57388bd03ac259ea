// Metrics and logs as an operator sees them (issue 19): /metrics of a real server process parsed,
// every series present and moving when its cause happens (logins, requests, cache, the event
// tailer, an outage of Redis and of PostgreSQL through a proxy the test cuts, the outbox), the audit
// consumer's own series, and pino's lines: one JSON object each, redacted, naming their request.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import postgres from 'postgres'
import { createApp } from '../src/app'
import { createLogger } from '../src/lib/logger'
import { createAuditMetrics } from '../src/lib/metrics'
import { routeLabeller } from '../src/lib/route-label'
import { AUDIT_GROUP, auditGroupState } from '../src/modules/audit/consumer'
import { createStoreKeys } from '../src/store'
import { createTestEnv, type TestEnv } from './helpers'
import {
  cookieFrom,
  http,
  type ServerProcess,
  startCli,
  startServer,
  type TcpProxy,
  tcpProxy,
  waitFor,
} from './processes'
import { ADMIN_PASSWORD, createTestDatabase, deleteKeys, freePort, REDIS_URL, suffix } from './services'

/** Prometheus text as series name with labels (as written) → value. */
function parseMetrics(text: string): Map<string, number> {
  const series = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    series.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return series
}

/** The sum of every series of `name` whose labels include `labels` (0 when there is none). */
function value(series: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const [key, v] of series) {
    const brace = key.indexOf('{')
    if ((brace < 0 ? key : key.slice(0, brace)) !== name) continue
    if (Object.entries(labels).every(([k, l]) => key.includes(`${k}="${l}"`))) sum += v
  }
  return sum
}

const has = (series: Map<string, number>, name: string) =>
  [...series.keys()].some((key) => key === name || key.startsWith(`${name}{`))

const redis = new Redis(REDIS_URL)
const prefix = `test:obs:${suffix()}:`
let database: { url: string; drop(): Promise<void> }
let sql: postgres.Sql
let redisProxy: TcpProxy
let pgProxy: TcpProxy
let server: ServerProcess

async function scrape(url = server.url): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toStartWith('text/plain; version=0.0.4')
  return parseMetrics(await response.text())
}

/** Scrapes until `check` holds, for what a background loop updates on its own schedule. */
async function eventually(check: (series: Map<string, number>) => boolean, what: string, url?: string) {
  await waitFor(async () => check(await scrape(url)), 8_000, what)
}

beforeAll(async () => {
  database = await createTestDatabase('observability')
  sql = postgres(database.url, { max: 1, onnotice: () => {} })
  redisProxy = tcpProxy(6379)
  pgProxy = tcpProxy(5432)
  const viaProxy = new URL(database.url)
  viaProxy.port = String(pgProxy.port)
  server = await startServer({
    DATABASE_URL: viaProxy.toString(),
    REDIS_URL: `redis://127.0.0.1:${redisProxy.port}/0`,
    REDIS_KEY_PREFIX: prefix,
    SESSION_CACHE_SIZE: '1000',
    LOG_LEVEL: 'info',
  })
}, 30_000)

afterAll(async () => {
  await server?.stop()
  redisProxy?.close()
  pgProxy?.close()
  await sql?.end()
  await deleteKeys(redis, prefix)
  await redis.quit()
  await database?.drop()
  // The server may take its full drain and the pool's connect timeout to stop after the cuts.
}, 30_000)

const SERIES = [
  'tessera_http_request_duration_seconds_bucket',
  'tessera_logins_total',
  'tessera_auth_denied_total',
  'tessera_session_lookups_total',
  'tessera_session_cache_hits_total',
  'tessera_session_cache_misses_total',
  'tessera_session_cache_entries',
  'tessera_event_tailer_lag_seconds',
  'tessera_event_tailer_reconnects_total',
  'tessera_outbox_backlog',
  'tessera_dependency_errors_total',
]

describe('an API instance', () => {
  let admin: string

  test('serves the process metrics and every series of its own', async () => {
    // The tailer sets its lag after its first read, the relay its backlog after its first poll.
    await eventually((s) => has(s, 'tessera_event_tailer_lag_seconds') && has(s, 'tessera_outbox_backlog'), 'loops')
    const text = await (await fetch(`${server.url}/metrics`)).text()
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(text).toContain(`# TYPE ${name} `)
    }
    for (const name of SERIES) expect(text).toContain(`# HELP ${name.replace(/_bucket$/, '')} `)
  })

  test('logins by outcome, durations by route and status, lookups by source, cache hits and misses', async () => {
    const before = await scrape()
    const login = await http(server.url, 'POST', '/user/login', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
    })
    admin = cookieFrom(login)
    const wrong = await http(server.url, 'POST', '/user/login', { body: { username: 'admin', password: 'not it' } })
    expect(wrong.status).toBe(401)
    expect((await http(server.url, 'GET', '/no/such/route')).status).toBe(404)
    // The cache answers once the tailer has vouched for it (its first read), so ask until it does.
    await waitFor(
      async () => {
        expect((await http(server.url, 'GET', '/user/me', { cookie: admin })).status).toBe(200)
        return value(await scrape(), 'tessera_session_cache_hits_total') > 0
      },
      5_000,
      'a cache hit',
    )
    const after = await scrape()
    const delta = (name: string, labels?: Record<string, string>) =>
      value(after, name, labels) - value(before, name, labels)

    expect(delta('tessera_logins_total', { outcome: 'succeeded' })).toBe(1)
    expect(delta('tessera_logins_total', { outcome: 'failed' })).toBe(1)
    const count = 'tessera_http_request_duration_seconds_count'
    expect(delta(count, { method: 'POST', route: '/user/login', status: '200' })).toBe(1)
    expect(delta(count, { method: 'POST', route: '/user/login', status: '401' })).toBe(1)
    expect(delta(count, { method: 'GET', route: 'unmatched', status: '404' })).toBe(1)
    const meCalls = delta(count, { method: 'GET', route: '/user/me', status: '200' })
    expect(meCalls).toBeGreaterThanOrEqual(2)
    // Every request in the histogram's top bucket, none of them slower than that bucket's bound.
    expect(delta('tessera_http_request_duration_seconds_bucket', { route: '/user/me', le: '+Inf' })).toBe(meCalls)
    expect(delta('tessera_http_request_duration_seconds_sum', { route: '/user/me' })).toBeGreaterThan(0)
    expect(delta('tessera_session_lookups_total', { source: 'redis', outcome: 'valid' })).toBeGreaterThanOrEqual(1)
    expect(delta('tessera_session_lookups_total', { source: 'cache', outcome: 'valid' })).toBeGreaterThanOrEqual(1)
    expect(delta('tessera_session_cache_misses_total')).toBeGreaterThanOrEqual(1)
    expect(value(after, 'tessera_session_cache_entries')).toBeGreaterThanOrEqual(1)
    // The cookie-less request to /user/me is a 401, counted as such.
    expect((await http(server.url, 'GET', '/user/me')).status).toBe(401)
    expect(value(await scrape(), 'tessera_auth_denied_total', { reason: 'unauthenticated' })).toBeGreaterThanOrEqual(1)
  })

  test('the tailer reports how far behind the stream head it ran, and 0 once caught up', async () => {
    const stream = createStoreKeys(prefix).events(0)
    // Stopped, the instance reads nothing while the stream moves on; resumed, it applies entries
    // a few hundred milliseconds old.
    server.proc.kill('SIGSTOP')
    try {
      await redis.xadd(stream, '*', 't', 'unknown_to_this_test')
      await Bun.sleep(400)
    } finally {
      server.proc.kill('SIGCONT')
    }
    await eventually((s) => value(s, 'tessera_event_tailer_lag_seconds', { partition: '0' }) >= 0.3, 'lag ≥ 0.3 s')
    await eventually((s) => value(s, 'tessera_event_tailer_lag_seconds', { partition: '0' }) === 0, 'lag back to 0')
  })

  test('Redis cut: reconnects, Redis errors, a 503 and an outbox backlog; restored: the backlog drains', async () => {
    const before = await scrape()
    // A committed change the relay has yet to apply, as a grant whose relay failed leaves it.
    const at = Date.now()
    const message = { kind: 'event', at, event: { type: 'user_enabled', instance: 'test', actorId: 1, subjectId: 1 } }
    await sql`insert into outbox (kind, payload) values ('event', ${sql.json(message)})`
    redisProxy.cut()
    try {
      const refused = await fetch(`${server.url}/auth/verify?permission=user:read`, {
        headers: { cookie: admin, 'x-request-id': 'obs-redis-cut' },
      })
      expect(refused.status).toBe(503)
      expect(refused.headers.get('x-request-id')).toBe('obs-redis-cut')
      await eventually(
        (s) =>
          value(s, 'tessera_event_tailer_reconnects_total', { partition: '0' }) >
            value(before, 'tessera_event_tailer_reconnects_total', { partition: '0' }) &&
          value(s, 'tessera_dependency_errors_total', { dependency: 'redis' }) >
            value(before, 'tessera_dependency_errors_total', { dependency: 'redis' }) &&
          value(s, 'tessera_outbox_backlog') === 1,
        'reconnects, Redis errors and a backlog of 1',
      )
    } finally {
      redisProxy.restore()
    }
    await eventually((s) => value(s, 'tessera_outbox_backlog') === 0, 'the backlog relayed')
    const [row] = await sql`select applied_at from outbox where payload->>'at' = ${String(at)}`
    expect(row?.applied_at).not.toBeNull()
  })

  // A connection the proxy drops at once fails at once; one it was opening may take until the
  // pool's connect timeout (5 s) to be given up, and then answers the same 503.
  test('PostgreSQL cut: a 503 and a PostgreSQL error counted', async () => {
    const before = value(await scrape(), 'tessera_dependency_errors_total', { dependency: 'postgres' })
    pgProxy.cut()
    try {
      const refused = await http(server.url, 'POST', '/user/login', { body: { username: 'admin', password: 'x' } })
      expect(refused.status).toBe(503)
      expect(value(await scrape(), 'tessera_dependency_errors_total', { dependency: 'postgres' })).toBeGreaterThan(
        before,
      )
    } finally {
      pgProxy.restore()
    }
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).ok, 8_000, 'ready again')
  }, 20_000)

  test('its log: one JSON object per line, the request id on lines about a request, no secret', async () => {
    const lines = server
      .output()
      .split('\n')
      .filter((line) => line !== '')
    expect(lines.length).toBeGreaterThan(0)
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    for (const entry of entries) expect(typeof entry.level === 'string' && typeof entry.message === 'string').toBe(true)
    const outage = entries.find((e) => e.message === 'dependency unavailable' && e.requestId === 'obs-redis-cut')
    expect(outage).toMatchObject({ level: 'warn', dependency: 'redis' })
    const output = server.output()
    expect(output).not.toContain(ADMIN_PASSWORD)
    expect(output).not.toContain(admin.slice(admin.indexOf('=') + 1))
  })
})

describe('the audit consumer', () => {
  test('serves recorded entries, lag and pending entries, and its process metrics', async () => {
    const port = freePort()
    const consumer = startCli('src/cli/audit.ts', {
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      AUDIT_METRICS_PORT: String(port),
    })
    const url = `http://127.0.0.1:${port}`
    try {
      // The logins and the outbox's event above are in the stream: all recorded, none left over.
      await waitFor(
        async () =>
          value(parseMetrics(await (await fetch(`${url}/metrics`)).text()), 'tessera_audit_recorded_total') >= 3,
        15_000,
        `the audit consumer recording\n${consumer.output()}`,
      )
      await eventually(
        (s) =>
          has(s, 'process_cpu_user_seconds_total') &&
          has(s, 'tessera_audit_dead_letters_total') &&
          value(s, 'tessera_audit_lag_entries') === 0 &&
          value(s, 'tessera_audit_pending_entries') === 0 &&
          has(s, 'tessera_audit_pending_entries'),
        'lag and pending at 0',
        url,
      )
    } finally {
      await consumer.stop()
    }
  })

  test('lag and pending follow the consumer group in Redis', async () => {
    const own = `test:obs-group:${suffix()}:`
    const keys = createStoreKeys(own)
    const stream = keys.events(0)
    const metrics = createAuditMetrics({ groupState: () => auditGroupState(redis, keys) })
    const read = async () => parseMetrics(await metrics.register.metrics())
    try {
      for (let i = 0; i < 3; i++) await redis.xadd(stream, '*', 't', 'x')
      // No group yet: the whole stream is still to be delivered.
      expect(value(await read(), 'tessera_audit_lag_entries')).toBe(3)
      await redis.xgroup('CREATE', stream, AUDIT_GROUP, '0')
      await redis.xreadgroup('GROUP', AUDIT_GROUP, 'someone', 'COUNT', 2, 'STREAMS', stream, '>')
      const state = await read()
      expect(value(state, 'tessera_audit_lag_entries')).toBe(1)
      expect(value(state, 'tessera_audit_pending_entries')).toBe(2)
    } finally {
      await deleteKeys(redis, own)
    }
  })
})

describe('logs', () => {
  let env: TestEnv
  beforeAll(async () => {
    env = await createTestEnv('observability_logs')
  })
  afterAll(async () => {
    await env.close()
  })

  test('a line written while a request is served names the request, a well-formed X-Request-Id is kept', async () => {
    const lines: string[] = []
    const logger = createLogger('info', (line) => lines.push(line))
    const app = createApp({ config: env.config, db: env.database.db, redis: env.redis, logger }).get(
      '/probe',
      async () => {
        await Bun.sleep(1)
        logger.info('deep inside a request')
        return 'ok'
      },
    )
    const kept = await app.handle(new Request('http://localhost/probe', { headers: { 'x-request-id': 'gateway-7' } }))
    expect(kept.headers.get('x-request-id')).toBe('gateway-7')
    const made = await app.handle(
      new Request('http://localhost/probe', { headers: { 'x-request-id': 'not well formed!' } }),
    )
    const generated = made.headers.get('x-request-id')
    expect(generated).toMatch(/^[0-9a-f-]{36}$/)
    expect(lines.map((line) => JSON.parse(line).requestId)).toEqual(['gateway-7', generated])
    logger.info('outside any request')
    expect(JSON.parse(lines[2] ?? '')).not.toHaveProperty('requestId')
  })

  test('cookies, passwords and tokens are redacted by path; a line never spans two', () => {
    const lines: string[] = []
    const logger = createLogger('debug', (line) => lines.push(line))
    logger.warn('careless\ncaller', {
      password: 'hunter2',
      body: { password: 'hunter3', newPassword: 'hunter4' },
      headers: { cookie: '__Host-sid=secret-a', authorization: 'Bearer secret-b', 'set-cookie': 'sid=secret-c' },
      token: 'secret-d',
    })
    expect(lines).toHaveLength(1)
    for (const secret of ['hunter2', 'hunter3', 'hunter4', 'secret-a', 'secret-b', 'secret-c', 'secret-d']) {
      expect(lines[0]).not.toContain(secret)
    }
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 'warn', message: 'careless\ncaller' })
  })
})

describe('route labels of the duration histogram', () => {
  test("the app's routes as declared: ids never reach a label, anything else is unmatched", async () => {
    const env = await createTestEnv('observability_routes')
    try {
      const label = routeLabeller(env.app.routes)
      expect(label('GET', '/user/me')).toBe('/user/me')
      expect(label('HEAD', '/user/me')).toBe('/user/me')
      expect(label('GET', '/user/me/')).toBe('/user/me')
      expect(label('GET', '/admin/users/42')).toBe('/admin/users/:id')
      expect(label('DELETE', '/admin/users/42/sessions/AbC')).toBe('/admin/users/:id/sessions/:sessionId')
      expect(label('POST', '/auth/verify/anything/below')).toBe('/auth/verify/*')
      expect(label('PATCH', '/auth/verify')).toBe('/auth/verify')
      expect(label('GET', '/admin/users/42/nothing')).toBe('unmatched')
      expect(label('PUT', '/user/me')).toBe('unmatched')
      expect(label('GET', '/no/such/route')).toBe('unmatched')
    } finally {
      await env.close()
    }
  })
})

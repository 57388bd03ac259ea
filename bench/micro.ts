// In-process cost of the hot routes and of their parts, with no network and no load generator:
// `bun bench/micro.ts`. Steadier than the HTTP scenarios on a shared machine, so it shows where
// the microseconds of an authenticated request go (the README's Performance section quotes it).
// Not part of `bun run bench`.

import { Elysia, t } from 'elysia'
import { createApp } from '../src/app'
import { silentLogger } from '../src/lib/logger'
import { createSessionCache } from '../src/modules/sessions/cache'
import { createSession, hashToken } from '../src/store'
import { createBenchEnv } from './lib/env'

interface Handler {
  handle(request: Request): Promise<Response>
}

async function measure(name: string, work: () => unknown, n = 30_000): Promise<void> {
  for (let i = 0; i < n / 10; i++) await work()
  Bun.gc(true)
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (let i = 0; i < n; i++) await work()
  const used = process.cpuUsage(cpu)
  const wallUs = ((performance.now() - started) * 1000) / n
  const cpuUs = (used.user + used.system) / n
  console.log(`${name.padEnd(46)} ${wallUs.toFixed(2).padStart(7)} µs wall ${cpuUs.toFixed(2).padStart(7)} µs CPU`)
}

const get = (app: Handler, path: string, cookie?: string) => async () => {
  const response = await app.handle(new Request(`http://localhost${path}`, { headers: cookie ? { cookie } : {} }))
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}`)
  await response.text()
}

const meBody = () => ({
  id: 1,
  username: 'u',
  permissions: ['user:read'],
  session: { id: 'x', createdAt: new Date().toISOString(), expiresAt: new Date().toISOString() },
})
const meSchema = (format: boolean) =>
  t.Object({
    id: t.Integer(),
    username: t.String(),
    permissions: t.Array(t.String()),
    session: t.Object({
      id: t.String(),
      createdAt: format ? t.String({ format: 'date-time' }) : t.String(),
      expiresAt: format ? t.String({ format: 'date-time' }) : t.String(),
    }),
  })

const env = await createBenchEnv()
try {
  const ctx = env.contextFor({})
  const [user] = await env.seedUsers(1)
  if (!user) throw new Error('no user seeded')
  const { token } = await createSession(ctx.store, {
    user: { id: user.id, username: user.username, permissions: [], permissionsVersion: 0 },
    ip: '127.0.0.1',
    userAgent: 'x'.repeat(120),
    now: Date.now(),
    event: {
      type: 'login_succeeded',
      username: user.username,
      instance: 'micro',
      actorId: user.id,
      subjectId: user.id,
    },
  })
  const cookie = `sid=${token}`
  // The cache is trusted only while an event tailer renews it; here nothing evicts, so trust it outright.
  const cache = createSessionCache(1000)
  cache.renewTrust(365 * 86_400_000)
  const deps = { config: ctx.config, db: env.database.db, redis: env.redis, logger: silentLogger }
  const cached = createApp({ ...deps, sessionCache: cache })
  const uncached = createApp(deps)

  console.log('Tessera app, app.handle():')
  await measure('GET /healthz', get(cached, '/healthz'))
  await measure('GET /user/me, cache on', get(cached, '/user/me', cookie))
  await measure('GET /auth/verify, cache on', get(cached, '/auth/verify', cookie))
  await measure('GET /user/me, cache off (one Redis read each)', get(uncached, '/user/me', cookie), 10_000)
  console.log('Parts:')
  await measure('hashToken', () => hashToken(token))
  await measure(
    'Elysia: bare route',
    get(
      new Elysia().get('/x', () => ({ ok: 1 })),
      '/x',
    ),
  )
  await measure(
    'Elysia: route reading the cookie jar',
    get(
      new Elysia().get('/x', ({ cookie: jar }) => ({ ok: String(jar.sid?.value ?? '').length })),
      '/x',
      cookie,
    ),
  )
  await measure(
    'Elysia: route reading the Cookie header',
    get(
      new Elysia().get('/x', ({ request }) => ({ ok: (request.headers.get('cookie') ?? '').length })),
      '/x',
      cookie,
    ),
  )
  await measure('Elysia: /user/me-shaped body, no schema', get(new Elysia().get('/x', meBody), '/x'))
  await measure(
    'Elysia: same, response schema',
    get(new Elysia().get('/x', meBody, { response: { 200: meSchema(false) } }), '/x'),
  )
  await measure(
    'Elysia: same, response schema with date-time',
    get(new Elysia().get('/x', meBody, { response: { 200: meSchema(true) } }), '/x'),
  )
} finally {
  await env.close()
}

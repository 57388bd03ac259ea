// @ts-check
// Benchmark peer: Fastify 5 + @fastify/cookie + @fastify/session with a Redis store (connect-redis,
// which @fastify/session accepts as an express-session store). Defaults kept unless http needs
// otherwise. Not part of Tessera; bench/run.ts starts it with PORT, REDIS_URL and KEY_PREFIX.

import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { RedisStore } from 'connect-redis'
import Fastify from 'fastify'
import { createClient } from 'redis'

const port = Number(process.env.PORT)
const redis = createClient({ url: process.env.REDIS_URL })
redis.on('error', (error) => console.error('peer_fastify redis error', error.message))
await redis.connect()

const app = Fastify({ logger: false })
await app.register(fastifyCookie)
await app.register(fastifySession, {
  store: /** @type {any} */ (new RedisStore({ client: redis, prefix: process.env.KEY_PREFIX })),
  secret: 'bench-only-secret-not-used-anywhere-else',
  cookieName: 'sid',
  saveUninitialized: false,
  cookie: { httpOnly: true, secure: false, sameSite: 'lax', maxAge: 12 * 3_600_000 },
})

app.get('/healthz', async () => ({ status: 'ok' }))

app.post('/login', async (request) => {
  await request.session.regenerate()
  const body = /** @type {{ username?: unknown } | undefined} */ (request.body)
  request.session.set('user', { id: 1, username: String(body?.username ?? 'bench'), permissions: [] })
  return { ok: true }
})

app.get('/me', async (request, reply) => {
  const user = request.session.get('user')
  if (!user) return reply.code(401).send({ error: 'unauthenticated' })
  return user
})

await app.listen({ port, host: '127.0.0.1' })
const stop = () => {
  app.close().finally(() => redis.quit().finally(() => process.exit(0)))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

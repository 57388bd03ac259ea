// @ts-check
// Benchmark peer: Express 5 + express-session + connect-redis on Node, configured the way their
// READMEs show. Not part of Tessera; bench/run.ts starts it with PORT, REDIS_URL and KEY_PREFIX.

import { RedisStore } from 'connect-redis'
import express from 'express'
import session from 'express-session'
import { createClient } from 'redis'

const port = Number(process.env.PORT)
const redis = createClient({ url: process.env.REDIS_URL })
redis.on('error', (error) => console.error('peer_express redis error', error.message))
await redis.connect()

const app = express()
app.disable('x-powered-by')
app.use(express.json())
app.use(
  session({
    store: new RedisStore({ client: redis, prefix: process.env.KEY_PREFIX }),
    secret: 'bench-only-secret-not-used-anywhere-else',
    name: 'sid',
    // The settings express-session's README recommends; the store's TTL follows the cookie.
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, secure: false, sameSite: 'lax', maxAge: 12 * 3_600_000 },
  }),
)

app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' })
})

// A new session id at login (no fixation), holding what Tessera's session holds.
app.post('/login', (req, res, next) => {
  req.session.regenerate((error) => {
    if (error) return next(error)
    Object.assign(req.session, {
      user: { id: 1, username: String(req.body?.username ?? 'bench'), permissions: [] },
    })
    res.json({ ok: true })
  })
})

app.get('/me', (req, res) => {
  const user = /** @type {{ user?: unknown }} */ (req.session).user
  if (!user) {
    res.status(401).json({ error: 'unauthenticated' })
    return
  }
  res.json(user)
})

const server = app.listen(port, '127.0.0.1')
const stop = () => {
  server.close()
  redis.quit().finally(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

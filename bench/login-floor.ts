// What any login over HTTP costs at the least, beside POST /user/login: a bare Bun server (no Elysia)
// that parses the JSON body and runs one argon2id verification at Tessera's parameters
// (LOGIN_FLOOR=argon2); or first reads the user from PostgreSQL with Tessera's own prepared query
// (LOGIN_FLOOR=pg); or calls Tessera's own login() (LOGIN_FLOOR=login): the same PostgreSQL read,
// rate-limit reservation, verification and session creation with its event, every Redis and
// PostgreSQL step of POST /user/login but none of the HTTP framework around it. bench/run.ts starts
// it with PORT, DATABASE_URL, REDIS_URL and REDIS_KEY_PREFIX.

import { loadConfig } from '../src/config'
import { createContext } from '../src/context'
import { createDatabase } from '../src/db/client'
import { silentLogger } from '../src/lib/logger'
import { login } from '../src/modules/auth/service'
import { hashPassword, verifyPassword } from '../src/modules/users/password'
import { findUserByUsername } from '../src/modules/users/repository'
import { connectRedis, createRedis } from '../src/store'

const FLOORS = ['argon2', 'pg', 'login'] as const
const floor = (process.env.LOGIN_FLOOR ?? 'argon2') as (typeof FLOORS)[number]
// A misspelt floor must not quietly measure another one under its name.
if (!FLOORS.includes(floor)) throw new Error(`LOGIN_FLOOR must be one of ${FLOORS.join(', ')}`)
const database = floor === 'argon2' ? undefined : createDatabase(process.env.DATABASE_URL ?? '', { max: 4 })
// Without the read, every body is checked against one hash of the benchmark's password.
const sharedHash = floor === 'argon2' ? await hashPassword(process.env.BENCH_PASSWORD ?? '') : ''

let redis: ReturnType<typeof createRedis> | undefined

async function loginHandler(): Promise<(body: Credentials) => Promise<boolean>> {
  if (!database) return async ({ password }) => verifyPassword(sharedHash, password)
  if (floor === 'pg') {
    return async ({ username, password }) => {
      const passwordHash = (await findUserByUsername(database.db, username))?.passwordHash
      return passwordHash !== undefined && (await verifyPassword(passwordHash, password))
    }
  }
  const config = loadConfig(process.env)
  redis = createRedis(config.redisUrl)
  await connectRedis(redis)
  const ctx = createContext({ config, db: database.db, redis, logger: silentLogger })
  return async ({ username, password }) => {
    try {
      await login(ctx, { username, password, ip: '127.0.0.1', userAgent: '', presentedToken: undefined })
      return true
    } catch {
      return false
    }
  }
}

interface Credentials {
  username: string
  password: string
}

const check = await loginHandler()
const server = Bun.serve({
  port: Number(process.env.PORT),
  hostname: '127.0.0.1',
  async fetch(request) {
    if (request.method === 'GET') return Response.json({ status: 'ok' })
    const ok = await check((await request.json()) as Credentials)
    return Response.json({ ok }, { status: ok ? 200 : 401 })
  },
})

const stop = () => {
  server.stop(true)
  void Promise.allSettled([database?.close(), redis?.quit()]).finally(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

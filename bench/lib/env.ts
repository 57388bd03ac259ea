// The benchmark's own PostgreSQL database and Redis key prefix, seeded through Tessera's own code and
// removed afterwards. Nothing outside `tessera_bench_<id>` and `bench:<id>:` is touched.

import type Redis from 'ioredis'
import { type Config, loadConfig } from '../../src/config'
import { type AppContext, createContext } from '../../src/context'
import { createDatabase, type Database } from '../../src/db/client'
import { ensureDatabase, migrateDatabase } from '../../src/db/migrate'
import { users } from '../../src/db/schema'
import { silentLogger } from '../../src/lib/logger'
import { hashPassword } from '../../src/modules/users/password'
import { connectRedis, createRedis } from '../../src/store'
import { cpuTimeMs } from './processes'

export const PG_BASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0'
export const USER_PASSWORD = 'bench-password-0123456789'

export interface BenchEnv {
  readonly id: string
  /** Root of every key this run writes; servers and peers get sub-prefixes of it. */
  readonly prefix: string
  /**
   * A second prefix as long as the default `tessera:` (8 characters), so that key names in the
   * memory measurement are as long as in production. Removed with the rest.
   */
  readonly shortPrefix: string
  readonly databaseName: string
  readonly databaseUrl: string
  readonly adminPassword: string
  readonly redis: Redis
  readonly database: Database
  /** Environment for a Tessera server process with production settings. */
  serverEnv(overrides: Record<string, string>): Record<string, string>
  /** A context (and so a session store) built exactly as a server with these settings builds it. */
  contextFor(overrides: Record<string, string>): AppContext
  /** CPU time (ms) of every PostgreSQL backend connected to the bench database, from /proc. */
  postgresCpuMs(): Promise<number>
  /** Inserts `count` users sharing one password (one argon2 hash, made at the real parameters). */
  seedUsers(count: number): Promise<{ id: number; username: string }[]>
  close(): Promise<void>
}

const randomId = () => crypto.randomUUID().replaceAll('-', '').slice(0, 10)

function databaseUrlFor(name: string): string {
  const url = new URL(PG_BASE_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** Deletes every key under a prefix (SCAN and UNLINK, never KEYS). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000)
    cursor = next
    if (keys.length > 0) deleted += await redis.unlink(...keys)
  } while (cursor !== '0')
  return deleted
}

export async function createBenchEnv(): Promise<BenchEnv> {
  const id = randomId()
  const prefix = `bench:${id}:`
  const shortPrefix = `b${id.slice(0, 6)}:`
  const databaseName = `tessera_bench_${id}`
  const databaseUrl = databaseUrlFor(databaseName)
  const adminPassword = `bench-admin-${randomId()}`

  const redis = createRedis(REDIS_URL, { commandTimeout: 60_000 })
  await connectRedis(redis)
  await ensureDatabase(databaseUrl)
  await migrateDatabase(databaseUrl)
  const database = createDatabase(databaseUrl, { max: 4 })

  const serverEnv = (overrides: Record<string, string>) => ({
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    ADMIN_PASSWORD: adminPassword,
    LOG_LEVEL: 'silent',
    COOKIE_SECURE: 'false',
    ...overrides,
  })

  const configFor = (overrides: Record<string, string>): Config => loadConfig(serverEnv(overrides))

  return {
    id,
    prefix,
    shortPrefix,
    databaseName,
    databaseUrl,
    adminPassword,
    redis,
    database,
    serverEnv,
    contextFor: (overrides) =>
      createContext({ config: configFor(overrides), db: database.db, redis, logger: silentLogger }),
    async postgresCpuMs() {
      const rows = await database.sql<
        { pid: number }[]
      >`select pid from pg_stat_activity where datname = ${databaseName}`
      let total = 0
      for (const { pid } of rows) {
        try {
          total += cpuTimeMs(pid)
        } catch {
          // The backend ended (or runs on another host): it is simply not counted.
        }
      }
      return total
    },
    async seedUsers(count) {
      const passwordHash = await hashPassword(USER_PASSWORD)
      const names = Array.from({ length: count }, (_, i) => `bench_user_${String(i).padStart(4, '0')}`)
      return database.db
        .insert(users)
        .values(names.map((username) => ({ username, passwordHash })))
        .returning({ id: users.id, username: users.username })
    },
    async close() {
      for (const root of [prefix, shortPrefix]) {
        await deleteKeys(redis, root).catch((error) => console.error(`bench: key cleanup failed: ${error}`))
      }
      await database.close().catch(() => {})
      const admin = createDatabase(databaseUrlFor('postgres'), { max: 1 })
      try {
        await admin.sql.unsafe(`drop database if exists "${databaseName}" with (force)`)
      } catch (error) {
        console.error(`bench: could not drop ${databaseName}: ${error}`)
      } finally {
        await admin.close()
      }
      await redis.quit().catch(() => {})
    },
  }
}

/** A free TCP port in the range reserved for the benchmark (16600-16699). */
export async function freePort(taken: Set<number>): Promise<number> {
  for (let port = 16600; port <= 16699; port++) {
    if (taken.has(port)) continue
    try {
      const probe = Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } })
      probe.stop(true)
      taken.add(port)
      return port
    } catch {}
  }
  throw new Error('bench: no free port in 16600-16699')
}

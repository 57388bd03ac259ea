// Boot helpers shared by the command-line entry points (server, audit consumer, audit tail).

import { type Config, ConfigError, loadConfig } from '../config'
import { storeFor } from '../context'
import { ensureDatabase, migrateDatabase, pendingMigrations } from '../db/migrate'
import { type EmbeddedMigration, MIGRATIONS } from '../db/migrations'
import { checkPartitions, connectRedis, createRedisClient, type RedisClient } from '../store'

/** URLs are printed without their password. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparseable URL)'
  }
}

export function fatal(line: string): never {
  console.error(line)
  process.exit(1)
}

const START_HINT = 'start it, or run `docker compose up -d` for a local Redis and PostgreSQL'

export function loadConfigOrExit(): Config {
  try {
    return loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) fatal(`tessera: invalid configuration: ${error.message}`)
    throw error
  }
}

async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: Timer | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000}s`)), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Creates the database if missing and applies pending migrations (returning them), or exits with one
 * line naming the URL.
 */
export async function migrateDatabaseOrExit(config: Config): Promise<EmbeddedMigration[]> {
  try {
    return await within(
      8_000,
      ensureDatabase(config.databaseUrl).then(() => migrateDatabase(config.databaseUrl)),
    )
  } catch (error) {
    fatal(
      `tessera: cannot prepare PostgreSQL at ${redact(config.databaseUrl)} (${(error as Error).message}); ${START_HINT}`,
    )
  }
}

const MIGRATE_HINT = 'run `tessera migrate` first, or set MIGRATE_ON_BOOT=true'

/**
 * Readies the database for a server or an audit consumer. With MIGRATE_ON_BOOT (the default outside
 * production) it is created and migrated; without it (the production default) it is only checked:
 * a schema changes in a step of its own (`tessera migrate`, once per release, before the instances
 * start), never as a side effect of an instance starting, and an instance never runs against a
 * schema older than its code. Exits with one line when the database is missing or behind.
 */
export async function prepareDatabaseOrExit(config: Config): Promise<void> {
  if (config.migrateOnBoot) {
    await migrateDatabaseOrExit(config)
    return
  }
  const where = redact(config.databaseUrl)
  let pending: EmbeddedMigration[] = []
  try {
    pending = await within(8_000, pendingMigrations(config.databaseUrl))
  } catch (error) {
    // 3D000: invalid_catalog_name, the database does not exist.
    if ((error as { code?: string }).code === '3D000')
      fatal(`tessera: the database at ${where} does not exist; ${MIGRATE_HINT}`)
    fatal(`tessera: cannot reach PostgreSQL at ${where} (${(error as Error).message}); ${START_HINT}`)
  }
  if (pending.length > 0) {
    const tags = pending.length === 1 ? pending[0]?.tag : `${pending[0]?.tag} to ${pending.at(-1)?.tag}`
    fatal(
      `tessera: the database at ${where} lacks ${pending.length} of ${MIGRATIONS.length} migrations (${tags}); ${MIGRATE_HINT}`,
    )
  }
}

/** Where Redis is, for a message: the URL without its password, or the cluster's seed nodes. */
function describeRedis(config: Config): string {
  return config.redisClusterNodes.length > 0
    ? `the cluster at ${config.redisClusterNodes.map(redact).join(',')}`
    : redact(config.redisUrl)
}

/**
 * Connects to Redis (a cluster must cover every slot), or exits with one line naming it; refuses a
 * key prefix whose sessions were written with another partition count. Once connected, the client
 * reconnects forever: an outage after boot is answered with 503s, not an exit.
 */
export async function connectRedisOrExit(config: Config): Promise<RedisClient> {
  const redis = createRedisClient({ url: config.redisUrl, clusterNodes: config.redisClusterNodes })
  redis.on('error', () => {})
  try {
    await within(5_000, connectRedis(redis))
  } catch (error) {
    redis.disconnect()
    fatal(`tessera: cannot reach Redis at ${describeRedis(config)} (${(error as Error).message}); ${START_HINT}`)
  }
  try {
    await checkPartitions(storeFor(config, redis))
  } catch (error) {
    redis.disconnect()
    fatal(`tessera: ${(error as Error).message}`)
  }
  return redis
}

/** Why the server could not listen, as the one line it exits with. */
export function listenFailure(config: Config, error: unknown): string {
  const where = `${config.host}:${config.port}`
  if ((error as { code?: string }).code !== 'EADDRINUSE') {
    return `tessera: cannot listen on ${where} (${(error as Error).message})`
  }
  const inUse = `tessera: port ${config.port} is in use (${where})`
  return config.reusePort
    ? `${inUse} by a process that does not share it; REUSE_PORT=true must be set on every instance`
    : `${inUse}; stop the other process, choose another PORT, or set REUSE_PORT=true on every instance to share it`
}

/** Runs `stop` once on SIGTERM or SIGINT, then exits. */
export function onShutdown(stop: (signal: string) => Promise<void>): void {
  let stopping = false
  const handler = (signal: string) => {
    if (stopping) return
    stopping = true
    stop(signal).finally(() => process.exit(0))
  }
  process.on('SIGTERM', () => handler('SIGTERM'))
  process.on('SIGINT', () => handler('SIGINT'))
}

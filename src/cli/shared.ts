// Boot helpers shared by the command-line entry points (server, audit consumer, audit tail).

import { readFileSync } from 'node:fs'
import { type Config, ConfigError, loadConfig } from '../config'
import { storeFor } from '../context'
import { ensureDatabase, migrateDatabase, pendingMigrations } from '../db/migrate'
import { type EmbeddedMigration, MIGRATIONS } from '../db/migrations'
import { passwordsIn, redact, redactNode, scrub } from '../lib/redact'
import {
  checkPartitions,
  clusterAuthUrl,
  connectRedis,
  createRedisClient,
  type RedisClient,
  type RedisTarget,
} from '../store'

export { redact } from '../lib/redact'

export function fatal(line: string): never {
  console.error(line)
  process.exit(1)
}

const START_HINT = 'start it, or run `docker compose up -d` for a local Redis and PostgreSQL'
const TLS_ERROR = /certificate|self.signed|altname|ssl|tls|handshake/i

/** What to do about a failed connection, from its error; `tls` when the connection uses TLS. */
function hintFor(why: string, credentials: string, tls?: string): string {
  // Redis: WRONGPASS, NOAUTH, NOPERM; PostgreSQL: 28P01 (password), 28000 (pg_hba.conf).
  if (/WRONGPASS|NOAUTH|NOPERM|password authentication|pg_hba\.conf|authentication failed/i.test(why)) {
    return `check the user and password in ${credentials}`
  }
  if (tls && TLS_ERROR.test(why)) return `check ${tls}`
  // A cluster's failed handshakes reach us only as a closed connection.
  if (tls && why === 'Connection is closed.') return `check ${tls}, or ${START_HINT}`
  return START_HINT
}

/** The passwords a configuration holds, never to be printed. */
const secretsOf = (config: Config) => passwordsIn([config.redisUrl, ...config.redisClusterNodes, config.databaseUrl])

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
    const why = (error as Error).message
    const hint = hintFor(why, 'DATABASE_URL', 'sslmode, sslrootcert, sslcert and sslkey in DATABASE_URL')
    fatal(
      scrub(`tessera: cannot prepare PostgreSQL at ${redact(config.databaseUrl)} (${why}); ${hint}`, secretsOf(config)),
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
    ? `the cluster at ${config.redisClusterNodes.map(redactNode).join(',')}`
    : redact(config.redisUrl)
}

/**
 * Connects to Redis (a cluster must cover every slot), or exits with one line naming it; refuses a
 * key prefix whose sessions were written with another partition count. Once connected, the client
 * reconnects forever: an outage after boot is answered with 503s, not an exit.
 */
export async function connectRedisOrExit(config: Config): Promise<RedisClient> {
  const redis = createRedisClient(redisTargetOrExit(config))
  // ioredis rejects connect() with "Connection is closed." or "None of startup nodes is
  // available"; the reason (WRONGPASS, a certificate that does not verify, ECONNREFUSED) comes as
  // an error event of the client, or of each node of a cluster.
  let reason: Error | undefined
  const remember = (error: Error) => {
    const cause = (error as { lastNodeError?: Error }).lastNodeError ?? error
    // The generic closing message comes last and would hide the reason seen before it.
    if (!reason || cause.message !== 'Connection is closed.') reason = cause
  }
  redis.on('error', remember)
  redis.on('node error', remember)
  try {
    await within(5_000, connectRedis(redis))
  } catch (error) {
    redis.disconnect()
    const why = reason?.message ?? (error as Error).message
    const where = config.redisClusterNodes.length > 0 ? 'REDIS_CLUSTER_NODES or REDIS_URL' : 'REDIS_URL'
    const usesTls = clusterAuthUrl(config.redisClusterNodes, config.redisUrl).startsWith('rediss:')
    const hint = hintFor(
      why,
      where,
      usesTls ? 'the rediss:// URL, REDIS_TLS_CA_FILE and REDIS_TLS_CERT_FILE' : undefined,
    )
    fatal(scrub(`tessera: cannot reach Redis at ${describeRedis(config)} (${why}); ${hint}`, secretsOf(config)))
  }
  try {
    await checkPartitions(storeFor(config, redis))
  } catch (error) {
    redis.disconnect()
    fatal(`tessera: ${(error as Error).message}`)
  }
  return redis
}

/** Where Redis is and the TLS files it needs, read now; exits with one line naming a file it cannot read. */
function redisTargetOrExit(config: Config): RedisTarget {
  const read = (variable: string, path: string) => {
    if (!path) return undefined
    try {
      return readFileSync(path, 'utf8')
    } catch (error) {
      fatal(`tessera: cannot read ${variable} ${path} (${(error as Error).message})`)
    }
  }
  return {
    url: config.redisUrl,
    clusterNodes: config.redisClusterNodes,
    tls: {
      ca: read('REDIS_TLS_CA_FILE', config.redisTlsCaFile),
      cert: read('REDIS_TLS_CERT_FILE', config.redisTlsCertFile),
      key: read('REDIS_TLS_KEY_FILE', config.redisTlsKeyFile),
    },
  }
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

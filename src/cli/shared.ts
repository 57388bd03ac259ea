// Boot helpers shared by the command-line entry points (server, audit consumer, audit tail).

import { type Config, ConfigError, loadConfig } from '../config'
import { storeFor } from '../context'
import { ensureDatabase, migrateDatabase } from '../db/migrate'
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

/** Creates and migrates the database, or exits with one line naming the URL. */
export async function prepareDatabaseOrExit(config: Config): Promise<void> {
  try {
    await within(
      8_000,
      ensureDatabase(config.databaseUrl).then(() => migrateDatabase(config.databaseUrl)),
    )
  } catch (error) {
    fatal(
      `tessera: cannot prepare PostgreSQL at ${redact(config.databaseUrl)} (${(error as Error).message}); ${START_HINT}`,
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

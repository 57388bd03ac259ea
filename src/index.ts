// Entry point: parse config, prepare the database, connect, serve, and close everything on signal.

import { createApp } from './app'
import { type Config, ConfigError, loadConfig } from './config'
import { createContext } from './context'
import { createDatabase } from './db/client'
import { ensureDatabase, migrateDatabase } from './db/migrate'
import { BODY_LIMIT_BYTES } from './lib/http'
import { createLogger, type Logger } from './lib/logger'
import { runOutboxRelay } from './modules/outbox'
import { ensureAdmin } from './modules/users/service'
import { connectRedis, createRedis } from './redis/client'

/** URLs are printed without their password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparseable URL)'
  }
}

function fatal(line: string): never {
  console.error(line)
  process.exit(1)
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

async function boot(config: Config, logger: Logger) {
  const startHint = 'start it, or run `docker compose up -d` for a local Redis and PostgreSQL'
  try {
    await within(
      8_000,
      ensureDatabase(config.databaseUrl).then(() => migrateDatabase(config.databaseUrl)),
    )
  } catch (error) {
    fatal(
      `tessera: cannot prepare PostgreSQL at ${redact(config.databaseUrl)} (${(error as Error).message}); ${startHint}`,
    )
  }
  const redis = createRedis(config.redisUrl, { retryStrategy: (n) => (n > 3 ? null : 200), reconnectOnError: null })
  redis.on('error', () => {})
  try {
    await within(5_000, connectRedis(redis))
  } catch (error) {
    fatal(`tessera: cannot reach Redis at ${redact(config.redisUrl)} (${(error as Error).message}); ${startHint}`)
  }
  // From here on, reconnect forever: an outage after boot is answered with 503s, not an exit.
  redis.options.retryStrategy = (attempt) => Math.min(50 * 2 ** attempt, 1_000)
  redis.on('error', (error) => logger.warn('redis error', { error: error.message }))

  const database = createDatabase(config.databaseUrl)
  const deps = { config, db: database.db, redis, logger }
  await ensureAdmin(createContext(deps))
  return { deps, database, redis }
}

async function main() {
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) fatal(`tessera: invalid configuration: ${error.message}`)
    throw error
  }
  const logger = createLogger(config.logLevel)
  const { deps, database, redis } = await boot(config, logger)
  const app = createApp(deps)
  const controller = new AbortController()
  const relay = runOutboxRelay(createContext(deps), controller.signal)

  app.listen({ port: config.port, hostname: config.host, maxRequestBodySize: BODY_LIMIT_BYTES + 1024 })
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${app.server?.port}`
  logger.info('tessera listening', { url, docs: `${url}/swagger`, instance: config.instanceId })

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info('shutting down', { signal })
    controller.abort()
    await app.stop()
    await relay.catch(() => {})
    await Promise.allSettled([database.close(), redis.quit()])
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}

await main()

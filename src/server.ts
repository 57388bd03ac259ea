// A running Tessera server: clients, background loops (event tailer, outbox relay) and the HTTP
// listener, started together from a configuration and stopped together.

import { createApp } from './app'
import { connectRedisOrExit, fatal, listenFailure, prepareDatabaseOrExit } from './cli/shared'
import type { Config } from './config'
import { type AppDeps, createContext } from './context'
import { createDatabase } from './db/client'
import { BODY_LIMIT_BYTES } from './lib/http'
import type { Logger } from './lib/logger'
import { runEventTailer } from './modules/events/tailer'
import { runOutboxRelay } from './modules/outbox'
import { createSessionCache } from './modules/sessions/cache'
import { seedDatabase } from './modules/users/seed'

export interface RunningServer {
  /** Where it listens, for a person to read. */
  readonly url: string
  /** Stops listening, ends the background loops and closes every client. */
  stop(): Promise<void>
}

/**
 * Prepares the database, connects, seeds, starts the background loops and listens; exits with one
 * line when PostgreSQL, Redis or the port is not usable.
 */
export async function startTessera(config: Config, logger: Logger): Promise<RunningServer> {
  await prepareDatabaseOrExit(config)
  const redis = await connectRedisOrExit(config)
  redis.on('error', (error) => logger.warn('redis error', { error: error.message }))
  const database = createDatabase(config.databaseUrl)
  const deps: AppDeps = { config, db: database.db, redis, logger }
  await seedDatabase(createContext(deps))

  const controller = new AbortController()
  const background: Promise<void>[] = []
  if (config.sessionCacheSize > 0) {
    // The cache is only as good as the event streams that evict from it: both start together.
    const sessionCache = createSessionCache(config.sessionCacheSize, config.redisPartitions)
    deps.sessionCache = sessionCache
    background.push(
      runEventTailer({
        redis,
        keys: createContext(deps).store.keys,
        cache: sessionCache,
        logger,
        signal: controller.signal,
      }),
    )
  }
  const app = createApp(deps)
  background.push(runOutboxRelay(createContext(deps), controller.signal))

  try {
    app.listen({
      port: config.port,
      hostname: config.host,
      // Elysia asks for SO_REUSEPORT unless told otherwise, and then a second instance on a busy
      // port starts silently and takes a share of its connections: sharing must be asked for.
      reusePort: config.reusePort,
      // Bun's own cap sits well above ours, so bodies between the two get our JSON 413 (see
      // readJsonBody) and only absurd ones are cut off by Bun.
      maxRequestBodySize: BODY_LIMIT_BYTES * 16,
    })
  } catch (error) {
    fatal(listenFailure(config, error))
  }
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${app.server?.port}`
  logger.info('tessera listening', { url, docs: `${url}/swagger`, instance: config.instanceId })

  return {
    url,
    async stop() {
      controller.abort()
      await app.stop()
      await Promise.allSettled(background)
      await Promise.allSettled([database.close(), redis.quit()])
    },
  }
}

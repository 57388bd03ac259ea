// A running Tessera server: clients, background loops (event tailer, outbox relay) and the HTTP
// listener, started together from a configuration and stopped together, after a drain.

import { type App, createApp } from './app'
import { connectRedisOrExit, fatal, listenFailure, prepareDatabaseOrExit } from './cli/shared'
import type { Config } from './config'
import { type AppDeps, createContext } from './context'
import { createDatabase } from './db/client'
import { createDrain } from './lib/drain'
import { BODY_LIMIT_BYTES } from './lib/http'
import { describeError, type Logger } from './lib/logger'
import { createMetrics } from './lib/metrics'
import { sleep } from './lib/sleep'
import { runEventTailer } from './modules/events/tailer'
import { runOutboxRelay } from './modules/outbox'
import { createSessionCache } from './modules/sessions/cache'
import { seedDatabase } from './modules/users/seed'

/** What the runtime's HTTP server gives the drain: where it listens, what is in flight, how to stop. */
export interface Listener {
  readonly port: number
  /** Requests in flight now (undefined where the runtime does not tell). */
  pendingRequests(): number | undefined
  /** Stops accepting; resolves once the requests in flight have been answered. */
  stop(): Promise<void>
  /** Closes every connection left, answered or not. */
  forceStop(): Promise<void>
}

/** Serves an app on the runtime's HTTP server, or throws (a busy port, say). */
export type Listen = (app: App, config: Config) => Listener

/** Bun's server, through Elysia's listen. */
export const listenOnBun: Listen = (app, config) => {
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
  const server = app.server ?? fatal(`tessera: cannot listen on ${config.host}:${config.port}`)
  return {
    port: server.port ?? config.port,
    pendingRequests: () => server.pendingRequests,
    // Bun's stop() refuses new connections, closes idle keep-alive ones at once and each busy one
    // when its response is sent; it resolves when none is left. stop(true) cuts those still busy.
    stop: async () => {
      await app.stop()
    },
    forceStop: () => server.stop(true),
  }
}

export interface RunningServer {
  /** Where it listens, for a person to read. */
  readonly url: string
  /**
   * Drains, then stops: /readyz answers 503 at once, requests are still served for SHUTDOWN_DELAY,
   * then the listener closes and in-flight requests may finish until SHUTDOWN_GRACE from the call;
   * then the background loops end and every client closes. Later calls share the first one's work.
   */
  stop(reason?: string): Promise<void>
}

/**
 * Prepares the database, connects, seeds, starts the background loops and listens; exits with one
 * line when PostgreSQL, Redis or the port is not usable.
 */
export async function startTessera(
  config: Config,
  logger: Logger,
  listen: Listen = listenOnBun,
): Promise<RunningServer> {
  await prepareDatabaseOrExit(config)
  const redis = await connectRedisOrExit(config)
  redis.on('error', (error) => logger.warn('redis error', { error: error.message }))
  const database = createDatabase(config.databaseUrl)
  const drain = createDrain()
  const metrics = createMetrics({ processMetrics: true })
  const deps: AppDeps = { config, db: database.db, redis, logger, drain, metrics }
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
        metrics,
      }),
    )
  }
  const app = createApp(deps)
  background.push(runOutboxRelay(createContext(deps), controller.signal))

  let listener: Listener
  try {
    listener = listen(app, config)
  } catch (error) {
    fatal(listenFailure(config, error))
  }
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${listener.port}`
  logger.info('tessera listening', { url, docs: `${url}/swagger`, instance: config.instanceId })

  async function drainAndStop(reason: string): Promise<void> {
    // Before any await: the flag is up in the same turn as the signal.
    drain.begin()
    const started = performance.now()
    const elapsed = () => Math.round(performance.now() - started)
    logger.info('draining: /readyz answers 503, requests are still served', {
      reason,
      inFlight: listener.pendingRequests(),
      delayMs: config.shutdownDelayMs,
      graceMs: config.shutdownGraceMs,
    })
    await sleep(config.shutdownDelayMs)

    logger.info('no longer accepting connections', { inFlight: listener.pendingRequests(), afterMs: elapsed() })
    const finished = await settlesWithin(listener.stop(), config.shutdownGraceMs - elapsed())
    if (finished) {
      logger.info('in-flight requests finished', { afterMs: elapsed() })
    } else {
      logger.warn('SHUTDOWN_GRACE elapsed: closing the connections left', {
        inFlight: listener.pendingRequests(),
        afterMs: elapsed(),
      })
      await listener.forceStop()
    }

    // Only now: requests served during the drain still used the cache and its tailer.
    controller.abort()
    await Promise.allSettled(background)
    await Promise.allSettled([database.close(), redis.quit()])
    logger.info('stopped', { afterMs: elapsed() })
  }

  let stopping: Promise<void> | undefined
  return {
    url,
    stop(reason = 'stop') {
      stopping ??= drainAndStop(reason)
      return stopping
    },
  }
}

/** True when `work` settles within `ms`, false when the time runs out first. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms))
  })
  try {
    return await Promise.race([work.then(() => true as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * SIGTERM or SIGINT drains and stops the server, then exits with 0. A second signal exits at once
 * with 1, for an operator who will not wait (or an orchestrator whose own grace ran out).
 */
export function stopOnSignals(server: RunningServer, logger: Logger): void {
  let stopping = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn('second signal: exiting now', { signal })
      process.exit(1)
    }
    stopping = true
    server.stop(signal).then(
      () => process.exit(0),
      (error) => {
        logger.error('shutdown failed', { error: describeError(error) })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}

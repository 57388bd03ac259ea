// What every module needs, built once per app from the injected clients and configuration.

import type { Config } from './config'
import type { Db } from './db/client'
import { createDrain, type Drain } from './lib/drain'
import type { Logger } from './lib/logger'
import { createMetrics, type Metrics } from './lib/metrics'
import { defineLimitScripts } from './modules/auth/rate-limit'
import type { SessionCache } from './modules/sessions/cache'
import { createSessionStore, type RedisClient, type SessionStore } from './store'

export interface AppDeps {
  config: Config
  db: Db
  redis: RedisClient
  logger: Logger
  /** Injected clock (ms since the epoch) so tests can move time. */
  now?: () => number
  /** Local session cache, kept honest by an event tailer the caller runs; omit to go to Redis always. */
  sessionCache?: SessionCache
  /** Set when the instance shuts down; omit for one that never drains (tests, benchmarks). */
  drain?: Drain
  /** The instance's series; omit for a registry of the app's own, without process metrics. */
  metrics?: Metrics
}

export interface AppContext {
  /** Unique per app; Elysia plugin seed, so two apps in one process never share plugin state. */
  readonly id: string
  readonly config: Config
  readonly db: Db
  readonly redis: RedisClient
  readonly logger: Logger
  readonly now: () => number
  readonly store: SessionStore
  readonly sessionCache: SessionCache | undefined
  readonly metrics: Metrics
  readonly drain: Drain
}

export function createContext(deps: AppDeps): AppContext {
  const { config } = deps
  const store = storeFor(config, deps.redis)
  // Every script exists on the client before its first request (see defineLimitScripts).
  defineLimitScripts(deps.redis)
  const metrics = deps.metrics ?? createMetrics()
  if (deps.sessionCache) metrics.watchCache(deps.sessionCache)
  return Object.freeze({
    id: crypto.randomUUID(),
    config,
    db: deps.db,
    redis: deps.redis,
    logger: deps.logger,
    now: deps.now ?? Date.now,
    store,
    sessionCache: deps.sessionCache,
    metrics,
    drain: deps.drain ?? createDrain(),
  })
}

/** The session store a configuration describes, on a client. */
export function storeFor(config: Config, redis: RedisClient): SessionStore {
  return createSessionStore(redis, {
    prefix: config.redisKeyPrefix,
    partitions: config.redisPartitions,
    idleTimeoutMs: config.sessionIdleTimeoutMs,
    absoluteTimeoutMs: config.sessionAbsoluteTimeoutMs,
    touchIntervalMs: config.sessionTouchIntervalMs,
    maxSessionsPerUser: config.sessionMaxPerUser,
    streamMaxLen: config.eventStreamMaxLen,
  })
}

// What every module needs, built once per app from the injected clients and configuration.

import type Redis from 'ioredis'
import type { Config } from './config'
import type { Db } from './db/client'
import type { Logger } from './lib/logger'
import { createMetrics, METRIC_HELP, type Metrics } from './lib/metrics'
import type { SessionCache } from './modules/sessions/cache'
import type { SessionStore } from './modules/sessions/store'
import { createBatchedGet } from './redis/batched-get'
import { createRedisKeys } from './redis/keys'

export interface AppDeps {
  config: Config
  db: Db
  redis: Redis
  logger: Logger
  /** Injected clock (ms since the epoch) so tests can move time. */
  now?: () => number
  /** Local session cache, kept honest by an event tailer the caller runs; omit to go to Redis always. */
  sessionCache?: SessionCache
}

export interface AppContext {
  /** Unique per app; Elysia plugin seed, so two apps in one process never share plugin state. */
  readonly id: string
  readonly config: Config
  readonly db: Db
  readonly redis: Redis
  readonly logger: Logger
  readonly now: () => number
  readonly store: SessionStore
  readonly sessionCache: SessionCache | undefined
  readonly metrics: Metrics
}

export function createContext(deps: AppDeps): AppContext {
  const { config } = deps
  const store: SessionStore = {
    redis: deps.redis,
    readRecord: createBatchedGet(deps.redis),
    keys: createRedisKeys(config.redisKeyPrefix),
    idleTimeoutMs: config.sessionIdleTimeoutMs,
    absoluteTimeoutMs: config.sessionAbsoluteTimeoutMs,
    touchIntervalMs: config.sessionTouchIntervalMs,
    maxSessionsPerUser: config.sessionMaxPerUser,
    streamMaxLen: config.eventStreamMaxLen,
  }
  return Object.freeze({
    id: crypto.randomUUID(),
    config,
    db: deps.db,
    redis: deps.redis,
    logger: deps.logger,
    now: deps.now ?? Date.now,
    store,
    sessionCache: deps.sessionCache,
    metrics: createMetrics(METRIC_HELP),
  })
}

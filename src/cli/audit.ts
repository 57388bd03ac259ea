// `bun run audit`: records every auth event in PostgreSQL (table audit_events) until SIGTERM.

import { storeFor } from '../context'
import { createDatabase } from '../db/client'
import { createLogger } from '../lib/logger'
import { createAuditMetrics } from '../lib/metrics'
import { auditGroupState, runAuditConsumer } from '../modules/audit/consumer'
import { connectRedisOrExit, loadConfigOrExit, onShutdown, prepareDatabaseOrExit } from './shared'

const config = loadConfigOrExit()
const logger = createLogger(config.logLevel)
await prepareDatabaseOrExit(config)
const redis = await connectRedisOrExit(config)
const database = createDatabase(config.databaseUrl, { max: 2 })
const controller = new AbortController()
const keys = storeFor(config, redis).keys
const metrics = createAuditMetrics({ processMetrics: true, groupState: () => auditGroupState(redis, keys) })
// Its own small HTTP server, for Prometheus only: the consumer has no API.
const metricsServer =
  config.auditMetricsPort > 0
    ? Bun.serve({
        hostname: config.host,
        port: config.auditMetricsPort,
        fetch: async (request) =>
          new URL(request.url).pathname === '/metrics'
            ? new Response(await metrics.register.metrics(), {
                headers: { 'content-type': metrics.register.contentType },
              })
            : new Response('not found', { status: 404 }),
      })
    : undefined

logger.info('audit consumer started', { consumer: config.auditConsumerName })
const running = runAuditConsumer({
  redis,
  db: database.db,
  keys,
  logger,
  signal: controller.signal,
  consumer: config.auditConsumerName,
  claimIdleMs: config.auditClaimIdleMs,
  metrics,
})

onShutdown(async () => {
  // The batch in hand is committed and acknowledged before the loop notices the signal.
  controller.abort()
  await running
  await metricsServer?.stop()
  await Promise.allSettled([redis.quit(), database.close()])
  logger.info('audit consumer stopped')
})

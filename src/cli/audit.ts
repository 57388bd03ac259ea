// `bun run audit`: records every auth event in PostgreSQL (table audit_events) until SIGTERM.

import { createDatabase } from '../db/client'
import { createLogger } from '../lib/logger'
import { runAuditConsumer } from '../modules/audit/consumer'
import { duplicateForBlocking } from '../redis/client'
import { createRedisKeys } from '../redis/keys'
import { connectRedisOrExit, loadConfigOrExit, onShutdown, prepareDatabaseOrExit } from './shared'

const config = loadConfigOrExit()
const logger = createLogger(config.logLevel)
await prepareDatabaseOrExit(config)
const redis = await connectRedisOrExit(config)
const blocking = duplicateForBlocking(redis)
blocking.on('error', () => {})
const database = createDatabase(config.databaseUrl, { max: 2 })
const controller = new AbortController()

logger.info('audit consumer started', { consumer: config.auditConsumerName })
const running = runAuditConsumer({
  redis: blocking,
  db: database.db,
  keys: createRedisKeys(config.redisKeyPrefix),
  logger,
  signal: controller.signal,
  consumer: config.auditConsumerName,
  claimIdleMs: config.auditClaimIdleMs,
})

onShutdown(async () => {
  // The batch in hand is committed and acknowledged before the loop notices the signal.
  controller.abort()
  await running
  await Promise.allSettled([blocking.quit(), redis.quit(), database.close()])
  logger.info('audit consumer stopped')
})

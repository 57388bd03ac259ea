// Entry point: parse config, start the server, and stop it on SIGTERM or SIGINT.

import { loadConfigOrExit, onShutdown } from './cli/shared'
import { createLogger } from './lib/logger'
import { startTessera } from './server'

const config = loadConfigOrExit()
const logger = createLogger(config.logLevel)
const server = await startTessera(config, logger)

onShutdown(async (signal) => {
  logger.info('shutting down', { signal })
  await server.stop()
})

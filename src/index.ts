// Entry point: parse config, start the server, and drain and stop it on SIGTERM or SIGINT.

import { loadConfigOrExit } from './cli/shared'
import { createLogger } from './lib/logger'
import { startTessera, stopOnSignals } from './server'

const config = loadConfigOrExit()
const logger = createLogger(config.logLevel)
const server = await startTessera(config, logger)
stopOnSignals(server, logger)

// Entry point on Deno 2 (`deno task start`, see deno.json): the same createApp, clients and
// background loops as src/server.ts, served by Deno.serve instead of Bun.serve.

import { createApp } from './app'
import {
  connectRedisOrExit,
  fatal,
  listenFailure,
  loadConfigOrExit,
  onShutdown,
  prepareDatabaseOrExit,
} from './cli/shared'
import { type AppDeps, createContext } from './context'
import { createDatabase } from './db/client'
import { createLogger } from './lib/logger'
import { runEventTailer } from './modules/events/tailer'
import { runOutboxRelay } from './modules/outbox'
import { createSessionCache } from './modules/sessions/cache'
import { seedDatabase } from './modules/users/seed'

/** The part of Deno's own API this file uses; tsc checks src/ against Bun's types only. */
interface DenoNetAddr {
  hostname: string
  port: number
}
declare const Deno: {
  serve(
    options: { port: number; hostname: string; reusePort?: boolean; onListen?: (address: DenoNetAddr) => void },
    handler: (request: Request, info: { remoteAddr: DenoNetAddr }) => Response | Promise<Response>,
  ): { addr: DenoNetAddr; shutdown(): Promise<void> }
}

const config = loadConfigOrExit()
const logger = createLogger(config.logLevel)

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

// Rate limits count clients by address, which handlers read from Elysia's `server.requestIP`. On
// Bun that is Bun's server; here each request's peer address is kept while the request lives.
// Elysia types `server` as Bun's; off Bun it calls only these two methods.
const peers = new WeakMap<Request, DenoNetAddr>()
let server: ReturnType<typeof Deno.serve> | undefined
app.server = {
  requestIP: (request: Request) => {
    const peer = peers.get(request)
    return peer ? { address: peer.hostname, port: peer.port } : null
  },
  // app.stop() calls this: stop accepting, let the requests in flight finish.
  stop: async () => server?.shutdown(),
} as unknown as NonNullable<typeof app.server>
try {
  server = Deno.serve(
    // No maxRequestBodySize as on Bun: readJsonBody caps JSON bodies, and no other body is read.
    { port: config.port, hostname: config.host, reusePort: config.reusePort, onListen: () => {} },
    (request, info) => {
      peers.set(request, info.remoteAddr)
      return app.fetch(request)
    },
  )
} catch (error) {
  fatal(listenFailure(config, error))
}

const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${server.addr.port}`
logger.info('tessera listening', { url, docs: `${url}/swagger`, instance: config.instanceId, runtime: 'deno' })

onShutdown(async (signal) => {
  logger.info('shutting down', { signal })
  controller.abort()
  await app.stop()
  await Promise.allSettled(background)
  await Promise.allSettled([database.close(), redis.quit()])
})

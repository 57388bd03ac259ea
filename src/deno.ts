// Entry point on Deno 2 (`deno task start`, see deno.json): the same server as src/index.ts
// (startTessera: clients, background loops, the drain), served by Deno.serve instead of Bun's.

import { loadConfigOrExit } from './cli/shared'
import { createLogger } from './lib/logger'
import { type Listen, startTessera, stopOnSignals } from './server'

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

/** Deno's HTTP server, with the peer address Elysia's handlers read as `server.requestIP`. */
const listenOnDeno: Listen = (app, config) => {
  // Rate limits count clients by address, which handlers read from Elysia's `server.requestIP`. On
  // Bun that is Bun's server; here each request's peer address is kept while the request lives.
  // Elysia types `server` as Bun's; off Bun it calls only these two methods.
  const peers = new WeakMap<Request, DenoNetAddr>()
  let server: ReturnType<typeof Deno.serve> | undefined
  let forced: (() => void) | undefined
  app.server = {
    requestIP: (request: Request) => {
      const peer = peers.get(request)
      return peer ? { address: peer.hostname, port: peer.port } : null
    },
    stop: async () => server?.shutdown(),
  } as unknown as NonNullable<typeof app.server>
  server = Deno.serve(
    // No maxRequestBodySize as on Bun: readJsonBody caps JSON bodies, and no other body is read.
    { port: config.port, hostname: config.host, reusePort: config.reusePort, onListen: () => {} },
    (request, info) => {
      peers.set(request, info.remoteAddr)
      return app.fetch(request)
    },
  )
  const listening = server
  return {
    port: listening.addr.port,
    // Deno does not count requests in flight.
    pendingRequests: () => undefined,
    // shutdown() stops accepting and resolves once every request in flight was answered.
    stop: () =>
      new Promise<void>((resolve, reject) => {
        forced = resolve
        listening.shutdown().then(resolve, reject)
      }),
    // Deno has no way to cut the connections left: the process exits right after this.
    forceStop: async () => forced?.(),
  }
}

const config = loadConfigOrExit()
const logger = createLogger(config.logLevel)
const server = await startTessera(config, logger, listenOnDeno)
stopOnSignals(server, logger)

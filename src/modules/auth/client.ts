// Who is asking, as far as events and listings record it: the client address and user agent.

import type { AppContext } from '../../context'
import { clientIp } from '../../lib/http'
import { sanitizeUserAgent } from '../sessions/record'

/** Elysia's `server` in a handler's context: null when the app is called in-process (tests). */
export type Server = { requestIP(request: Request): { address: string } | null } | null

export function clientFacts(ctx: AppContext, request: Request, server: Server) {
  return {
    ip: clientIp(request, server?.requestIP(request)?.address, ctx.config.trustProxy),
    userAgent: sanitizeUserAgent(request.headers.get('user-agent')),
  }
}

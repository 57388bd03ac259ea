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

/** Who did something, as events record it: a user id (0 for nobody) and where they called from. */
export interface Actor {
  id: number
  ip: string
  userAgent: string
}

/** The fields every event an actor causes carries: instance, actor, subject, address, user agent. */
export function actorEventFields(ctx: AppContext, actor: Actor, subjectId: number) {
  return {
    instance: ctx.config.instanceId,
    actorId: actor.id,
    subjectId,
    ip: actor.ip,
    userAgent: actor.userAgent,
  }
}

// Who is asking, as events and listings record it: the client address and user agent, and the
// actor (a user id, 0 for nobody) that a change is recorded against.

import type { AppContext } from '../../context'
import { clientIp } from '../../lib/http'
import { sanitizeUserAgent } from '../../store'

/** Elysia's `server` in a handler's context: null when the app is called in-process (tests). */
export type Server = { requestIP(request: Request): { address: string } | null } | null

export interface ClientFacts {
  readonly ip: string
  readonly userAgent: string
}

export function clientFacts(ctx: AppContext, request: Request, server: Server): ClientFacts {
  return {
    ip: clientIp(request, server?.requestIP(request)?.address, ctx.config.trustProxy),
    userAgent: sanitizeUserAgent(request.headers.get('user-agent')),
  }
}

/**
 * Who does something: a user id (0 for nobody: self-registration, the system, an operator), what
 * they hold (for the policy's decisions on what an answer may show), and where they called from
 * (for events).
 */
export interface Actor extends ClientFacts {
  readonly id: number
  readonly permissions: readonly string[]
  /** Set for the admin CLI's operator (`cli:<os user>`), who is no user: see operatorActor. */
  readonly operator?: string
}

/**
 * The actor of an authenticated request. Address and user agent are read when first asked for:
 * most authenticated requests change nothing and never need them.
 */
class RequestActor implements Actor {
  #facts: ClientFacts | undefined
  constructor(
    readonly id: number,
    readonly permissions: readonly string[],
    private readonly ctx: AppContext,
    private readonly request: Request,
    private readonly server: Server,
  ) {}
  private get facts(): ClientFacts {
    this.#facts ??= clientFacts(this.ctx, this.request, this.server)
    return this.#facts
  }
  get ip() {
    return this.facts.ip
  }
  get userAgent() {
    return this.facts.userAgent
  }
}

export function requestActor(
  ctx: AppContext,
  session: { userId: number; permissions: readonly string[] },
  request: Request,
  server: Server,
): Actor {
  return new RequestActor(session.userId, session.permissions, ctx, request, server)
}

/** An anonymous caller (registration, login): nobody, holding nothing. */
export function anonymousActor(facts: ClientFacts): Actor {
  return { id: 0, permissions: [], ...facts }
}

/** Tessera itself, at boot (seeding): nobody, from nowhere. */
export function systemActor(): Actor {
  return { id: 0, permissions: ['superuser'], ip: '', userAgent: '' }
}

/**
 * Someone with a shell where Tessera's credentials are (`tessera admin`), named `cli:<os user>` in
 * every event they cause. Not a user, so no user's rules bind them: the policy lets an operator
 * grant what they do not hold and change superusers' accounts (policy.ts), as anyone with the
 * database's credentials could anyway. Invariants still hold: the last superuser stays one.
 */
export function operatorActor(osUser: string): Actor {
  return { id: 0, permissions: ['superuser'], ip: '', userAgent: 'tessera-cli', operator: `cli:${osUser}` }
}

/** The fields every event an actor causes carries: instance, actor, subject, address, user agent. */
export function actorEventFields(ctx: AppContext, actor: Actor, subjectId: number) {
  return {
    instance: ctx.config.instanceId,
    actorId: actor.id,
    subjectId,
    ip: actor.ip,
    userAgent: actor.userAgent,
    ...(actor.operator === undefined ? {} : { operator: actor.operator }),
  }
}

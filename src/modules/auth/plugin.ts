// The auth plugin: routes declare `{ auth: true }` or `{ permission: 'user:assign' }` and receive
// `session`; anything else answers 401 (no valid session) or 403 (permission missing).

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { forbidden, unauthenticated, withRedis } from '../../lib/errors'
import { SESSION_SECURITY } from '../docs'
import { hasPermission, type Permission } from '../permissions/catalogue'
import { appendEvent, type EventInput, type Session } from '../sessions/store'
import { type Authenticate, createAuthenticator } from './authenticate'

interface CookieJar {
  [name: string]: { value?: unknown } | undefined
}

/**
 * Authentication runs in `transform`, before body validation, so an anonymous caller learns that it
 * must log in (401) rather than how the body should look (422). The outcome is kept per request,
 * so the `resolve` that hands the session to the handler costs no second lookup.
 */
export function authPlugin(ctx: AppContext, authenticate: Authenticate = createAuthenticator(ctx, ctx.sessionCache)) {
  const outcomes = new WeakMap<Request, Promise<Session | undefined>>()
  const cookieName = ctx.config.cookieName

  const sessionFor = (request: Request, cookie: CookieJar, fresh = false) => {
    let outcome = outcomes.get(request)
    if (!outcome) {
      outcome = authenticate(cookie[cookieName]?.value, fresh)
      outcomes.set(request, outcome)
    }
    return outcome
  }

  const requireSession = async ({ request, cookie }: { request: Request; cookie: CookieJar }, fresh = false) => {
    const session = await sessionFor(request, cookie, fresh)
    if (!session) {
      ctx.metrics.increment('tessera_auth_denied_total', { reason: 'unauthenticated' })
      throw unauthenticated()
    }
    return session
  }

  /** A refused permission is counted and recorded in the event stream: who, what, where. */
  const deny = async (session: Session, permission: Permission, request: Request): Promise<never> => {
    ctx.metrics.increment('tessera_auth_denied_total', { reason: 'forbidden' })
    const event: EventInput = {
      type: 'access_denied',
      permission,
      path: new URL(request.url).pathname.slice(0, 200),
      instance: ctx.config.instanceId,
      actorId: session.userId,
      subjectId: session.userId,
      sessionHash: session.tokenHash,
    }
    await withRedis(() => appendEvent(ctx.store, event, ctx.now()))
    throw forbidden(permission)
  }

  return new Elysia({ name: 'tessera.auth', seed: ctx.id }).macro({
    /** The session if there is a valid one, without failing when there is none (e.g. logout). */
    optionalAuth: {
      // The empty requirement marks the cookie as optional in the OpenAPI spec.
      detail: { security: [...SESSION_SECURITY, {}] },
      async resolve({ request, cookie }) {
        return { session: await sessionFor(request, cookie) }
      },
    },
    auth: {
      detail: { security: SESSION_SECURITY },
      async transform(context) {
        await requireSession(context)
      },
      async resolve(context) {
        return { session: await requireSession(context) }
      },
    },
    permission: (permission: Permission) => ({
      detail: { security: SESSION_SECURITY },
      async transform(context) {
        const session = await requireSession(context, true)
        if (!hasPermission(session.permissions, permission)) await deny(session, permission, context.request)
      },
      async resolve(context) {
        return { session: await requireSession(context, true) }
      },
    }),
  })
}

// The auth plugin: one macro. Routes declare `{ auth: true }` (a session), `{ auth: 'user:read' }`
// (a session holding that permission) or `{ auth: { permission, fresh } }` (and a password proven
// recently), and their handlers receive a typed `session` and `actor`; anything else answers 401
// (no valid session), 403 (permission missing) or 401 `reauth_required` (proof too old) in the one
// error shape.

import { Elysia } from 'elysia'
import { parseDuration } from '../../config'
import type { AppContext } from '../../context'
import { AppError, type ErrorBodyType, errorBody, withRedis } from '../../lib/errors'
import { REQUEST_ID_HEADER } from '../../lib/http'
import { appendEvent, cookieFromHeader, type Session } from '../../store'
import { SESSION_SECURITY } from '../docs'
import { hasPermission, type Permission } from '../permissions/catalogue'
import { type Authenticate, createAuthenticator } from './authenticate'
import { type Actor, clientFacts, requestActor, type Server } from './client'

/**
 * What a route needs: any session, or one holding a permission; `fresh` also needs the password
 * proven within REAUTH_WINDOW (`true`) or the given duration (e.g. `'5m'`). Freshness counts from
 * the last proof of password (login, POST /user/reauth, a password change), not from creation or
 * activity.
 */
export type AuthNeed = true | Permission | { permission?: Permission; fresh?: true | string }

function parseNeed(ctx: AppContext, need: AuthNeed): { permission?: Permission; freshMs?: number } {
  if (need === true) return {}
  if (typeof need === 'string') return { permission: need }
  if (need.fresh === undefined) return { permission: need.permission }
  const freshMs = need.fresh === true ? ctx.config.reauthWindowMs : parseDuration(need.fresh)
  // A route's declaration is code: a bad one fails when the app is built, not at the first request.
  if (freshMs === undefined) throw new Error(`auth macro: "${need.fresh}" is not a duration`)
  return { permission: need.permission, freshMs }
}

/**
 * The session is looked up in `resolve`, after the request was validated, and the outcome is
 * returned (`status(401)`) rather than thrown, so OpenAPI, Eden and the handler types see it. The
 * token is read straight from the Cookie header: parsing every cookie into Elysia's cookie jar
 * would cost more than the rest of a cached lookup.
 */
export function authPlugin(ctx: AppContext, authenticate: Authenticate = createAuthenticator(ctx)) {
  const cookieName = ctx.config.cookieName

  const refusal = (set: { headers: Record<string, unknown> }, error: AppError): ErrorBodyType =>
    errorBody(error, String(set.headers[REQUEST_ID_HEADER] ?? ''))

  /** A refused permission is counted and recorded in the event stream: who, what, where. */
  const recordDenial = (session: Session, permission: Permission, request: Request, server: Server) => {
    ctx.metrics.authDenied.inc({ reason: 'forbidden' })
    return withRedis(() =>
      appendEvent(
        ctx.store,
        {
          type: 'access_denied',
          permission,
          path: new URL(request.url).pathname.slice(0, 200),
          instance: ctx.config.instanceId,
          actorId: session.userId,
          subjectId: session.userId,
          sessionHash: session.tokenHash,
          ...clientFacts(ctx, request, server),
        },
        ctx.now(),
      ),
    )
  }

  return new Elysia({ name: 'tessera.auth', seed: ctx.id }).macro({
    auth(need: AuthNeed) {
      const { permission, freshMs } = parseNeed(ctx, need)
      // A permission or freshness check skips the local cache: a revoke made through any instance
      // binds on the very next request everywhere, and a re-authentication anywhere counts at once.
      const fresh = permission !== undefined || freshMs !== undefined
      return {
        detail: { security: SESSION_SECURITY },
        async resolve({ request, server, set, status }) {
          const session = await authenticate(cookieFromHeader(request.headers.get('cookie'), cookieName), fresh)
          if (!session) {
            ctx.metrics.authDenied.inc({ reason: 'unauthenticated' })
            return status(401, refusal(set, new AppError('unauthenticated')))
          }
          if (permission !== undefined && !hasPermission(session.permissions, permission)) {
            await recordDenial(session, permission, request, server)
            return status(403, refusal(set, new AppError('forbidden', { params: { permission } })))
          }
          // After the permission: a session that may not act at all is not asked to prove more.
          if (freshMs !== undefined && ctx.now() - session.authenticatedAt >= freshMs) {
            ctx.metrics.authDenied.inc({ reason: 'reauth_required' })
            return status(401, refusal(set, new AppError('reauth_required')))
          }
          const actor: Actor = requestActor(ctx, session, request, server)
          return { session, actor }
        },
      }
    },
  })
}

// Administration of sessions: one user's (session:revoke), or everyone's (superuser).

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { errors } from '../../lib/responses'
import { clearSessionCookie } from '../auth/cookie'
import type { authPlugin } from '../auth/plugin'
import { SessionList, SessionsEnded } from '../sessions/model'
import { endEverySession, endSession, endUserSessions, listSessions } from '../sessions/service'
import { EverySessionEnded, UserIdParams, UserSessionParams } from './model'
import { assertMayManageSessionsOf } from './service'

export function adminSessionRoutes(ctx: AppContext, auth: ReturnType<typeof authPlugin>) {
  const { config } = ctx
  return new Elysia({ name: 'tessera.routes.admin.sessions', seed: ctx.id, tags: ['admin'] })
    .use(auth)
    .get(
      '/admin/users/:id/sessions',
      async ({ params, session, actor }) => {
        await assertMayManageSessionsOf(ctx, actor, params.id)
        return { sessions: await listSessions(ctx, params.id, session.tokenHash) }
      },
      {
        auth: 'session:revoke',
        params: UserIdParams,
        response: { 200: SessionList, ...errors(401, 403, 404, 422) },
        detail: {
          summary: "List a user's sessions",
          description:
            "Needs session:revoke. Live sessions, newest first; never a token or its hash. A superuser's sessions are listed only to a superuser or the user itself (403 otherwise).",
        },
      },
    )
    .delete(
      '/admin/users/:id/sessions/:sessionId',
      async ({ params, session, actor, cookie }) => {
        await assertMayManageSessionsOf(ctx, actor, params.id)
        const { tokenHash } = await endSession(ctx, {
          userId: params.id,
          publicId: params.sessionId,
          actor,
          reason: 'ended_by_admin',
        })
        const currentEnded = tokenHash === session.tokenHash
        if (currentEnded) clearSessionCookie(config, cookie)
        return { ended: 1, currentEnded }
      },
      {
        auth: 'session:revoke',
        params: UserSessionParams,
        response: { 200: SessionsEnded, ...errors(401, 403, 404, 422) },
        detail: {
          summary: "End one of a user's sessions",
          description:
            "Needs session:revoke; a superuser's sessions can be ended only by a superuser or itself. 404 when the user has no session with that public id.",
        },
      },
    )
    .delete(
      '/admin/users/:id/sessions',
      async ({ params, session, actor, cookie }) => {
        await assertMayManageSessionsOf(ctx, actor, params.id)
        const ended = await endUserSessions(ctx, {
          userId: params.id,
          actor,
          reason: 'ended_by_admin',
        })
        const currentEnded = params.id === session.userId
        if (currentEnded) clearSessionCookie(config, cookie)
        return { ended, currentEnded }
      },
      {
        auth: 'session:revoke',
        params: UserIdParams,
        response: { 200: SessionsEnded, ...errors(401, 403, 404, 422) },
        detail: {
          summary: "End all of a user's sessions",
          description:
            "Needs session:revoke; a superuser's sessions can be ended only by a superuser or itself. Every session of the user ends at once, on every instance.",
        },
      },
    )
    .delete(
      '/admin/sessions',
      ({ session, actor }) =>
        endEverySession(ctx, {
          actor,
          exceptTokenHash: session.tokenHash,
          reason: 'ended_everywhere_by_admin',
        }),
      {
        auth: { permission: 'superuser', fresh: true },
        response: { 200: EverySessionEnded, ...errors(401, 403) },
        detail: {
          summary: 'End every session of every user',
          description:
            "Needs superuser: a break-glass action (e.g. after a suspected leak), which would otherwise let one session:revoke holder log out every administrator. Ends every session except the caller's own, one user at a time (each atomic, each with its event), then announces `all_sessions_revoked`. The caller can end its own with DELETE /sessions?all=true.",
        },
      },
    )
}

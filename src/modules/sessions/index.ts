// A user's own sessions: list them, end one, end all the others (or all, this one included).

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { errors } from '../../lib/responses'
import { clearSessionCookie } from '../auth/cookie'
import type { authPlugin } from '../auth/plugin'
import { EndAllQuery, SessionIdParams, SessionList, SessionsEnded } from './model'
import { endSession, endUserSessions, listSessions } from './service'

export function sessionRoutes(ctx: AppContext, auth: ReturnType<typeof authPlugin>) {
  const { config } = ctx
  return new Elysia({ name: 'tessera.routes.sessions', seed: ctx.id, tags: ['sessions'] })
    .use(auth)
    .get(
      '/sessions',
      async ({ session }) => ({ sessions: await listSessions(ctx, session.userId, session.tokenHash) }),
      {
        auth: true,
        response: { 200: SessionList, ...errors(401) },
        detail: {
          summary: 'My sessions',
          description:
            'Every live session of the caller, newest first: public id, created, last seen, IP, user agent, and which one is making this request. Tokens and their hashes are never shown.',
        },
      },
    )
    .delete(
      '/sessions/:id',
      async ({ session, actor, params, cookie }) => {
        const { tokenHash } = await endSession(ctx, {
          userId: session.userId,
          publicId: params.id,
          actor,
          reason: 'ended_by_user',
        })
        const currentEnded = tokenHash === session.tokenHash
        if (currentEnded) clearSessionCookie(config, cookie)
        return { ended: 1, currentEnded }
      },
      {
        auth: true,
        params: SessionIdParams,
        response: { 200: SessionsEnded, ...errors(401, 403, 404, 422) },
        detail: {
          summary: 'End one of my sessions',
          description:
            "Ends the caller's session with this public id, on every instance. 404 when the caller has no such session (another user's id included). Ending the current session also clears its cookie.",
        },
      },
    )
    .delete(
      '/sessions',
      async ({ session, actor, query, cookie }) => {
        const all = query.all === true
        const ended = await endUserSessions(ctx, {
          userId: session.userId,
          exceptTokenHash: all ? undefined : session.tokenHash,
          actor,
          reason: all ? 'ended_all_by_user' : 'ended_others_by_user',
        })
        if (all) clearSessionCookie(config, cookie)
        return { ended, currentEnded: all }
      },
      {
        auth: true,
        query: EndAllQuery,
        response: { 200: SessionsEnded, ...errors(401, 403, 422) },
        detail: {
          summary: 'End my other sessions',
          description:
            'Ends every session of the caller except the current one, on every instance. With `?all=true` the current one ends too and its cookie is cleared.',
        },
      },
    )
}

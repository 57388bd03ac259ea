// POST /user/password: change one's own password; the answer carries the rotated session's cookie.

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { AppError } from '../../lib/errors'
import { errors } from '../../lib/responses'
import { clearSessionCookie, setSessionCookie } from '../auth/cookie'
import type { authPlugin } from '../auth/plugin'
import { PasswordChangeBody, PasswordChanged } from './model'
import { changePassword } from './service'

export function passwordRoutes(ctx: AppContext, auth: ReturnType<typeof authPlugin>) {
  const { config } = ctx
  return new Elysia({ name: 'tessera.routes.password', seed: ctx.id, tags: ['auth'] }).use(auth).post(
    '/user/password',
    async ({ session, actor, body, cookie }) => {
      const outcome = await changePassword(ctx, {
        session,
        actor,
        currentPassword: body.currentPassword,
        newPassword: body.newPassword,
        keepOtherSessions: body.keepOtherSessions ?? false,
      })
      if (!outcome.token) {
        // The password did change, but this session was ended meanwhile (logout elsewhere, an admin).
        clearSessionCookie(config, cookie)
        throw new AppError('unauthenticated')
      }
      setSessionCookie(config, cookie, outcome.token)
      return {
        otherSessionsEnded: outcome.otherSessionsEnded,
        propagated: outcome.propagated,
        session: { id: outcome.publicId, expiresAt: new Date(session.expiresAt).toISOString() },
      }
    },
    {
      auth: true,
      body: PasswordChangeBody,
      response: { 200: PasswordChanged, ...errors(401, 403, 409, 413, 415, 422, 429) },
      detail: {
        summary: 'Change my password',
        description:
          'Verifies `currentPassword` (403 `wrong_password` when wrong; failures count towards the login limits, 429 past them), stores the new argon2id hash, ends every other session of the user unless `keepOtherSessions` is true, and rotates the current session: the answer sets a new cookie and the old token is dead. The rotated session keeps its absolute expiry; its public id changes with its token.',
      },
    },
  )
}

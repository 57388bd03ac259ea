// Routes for registering users and granting or revoking their permissions.

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { errors } from '../../lib/responses'
import { clientFacts } from '../auth'
import type { authPlugin } from '../auth/plugin'
import { Credentials, PermissionChangeBody, PermissionChangeResult, UserCreated } from './model'
import { changePermission, createUser } from './service'

export function userRoutes(ctx: AppContext, auth: ReturnType<typeof authPlugin>) {
  const change = (mode: 'grant' | 'revoke') =>
    async function handler({
      body,
      session,
      request,
      server,
    }: {
      body: { username: string; permission: string }
      session: { userId: number }
      request: Request
      server: Parameters<typeof clientFacts>[2]
    }) {
      return changePermission(
        ctx,
        { ...body, actor: { id: session.userId, ...clientFacts(ctx, request, server) } },
        mode,
      )
    }

  return new Elysia({ name: 'tessera.routes.users', seed: ctx.id, tags: ['users'] })
    .use(auth)
    .post(
      '/user',
      async ({ body, request, server, set }) => {
        const user = await createUser(ctx, body, { id: 0, ...clientFacts(ctx, request, server) })
        set.status = 201
        return user
      },
      {
        body: Credentials,
        response: { 201: UserCreated, ...errors(403, 409, 413, 415, 422) },
        detail: { summary: 'Register a user', description: 'Creates an account with no permissions.' },
      },
    )
    .post('/user/assign', change('grant'), {
      permission: 'user:assign',
      body: PermissionChangeBody,
      response: { 200: PermissionChangeResult, ...errors(401, 403, 404, 413, 415, 422) },
      detail: {
        summary: 'Grant a permission',
        description:
          "Needs user:assign, and the caller must hold the permission it grants (only a superuser grants superuser). The user's live sessions carry the change on their next request; no new login is needed.",
      },
    })
    .post('/user/unassign', change('revoke'), {
      permission: 'user:assign',
      body: PermissionChangeBody,
      response: { 200: PermissionChangeResult, ...errors(401, 403, 404, 409, 413, 415, 422) },
      detail: {
        summary: 'Revoke a permission',
        description:
          "Needs user:assign and the permission itself. A superuser's permissions can be changed only by itself, and the last superuser cannot lose the role. Live sessions lose the permission on their next request.",
      },
    })
}

// Routes for registering users and granting or revoking their permissions.

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { AppError, withRedis } from '../../lib/errors'
import { errors } from '../../lib/responses'
import { anonymousActor, clientFacts } from '../auth/client'
import type { authPlugin } from '../auth/plugin'
import { reserveRegistration } from '../auth/rate-limit'
import { Credentials, PermissionChangeBody, PermissionChangeResult, UserCreated } from './model'
import { changePermission, createUser } from './service'

export function userRoutes(ctx: AppContext, auth: ReturnType<typeof authPlugin>) {
  return new Elysia({ name: 'tessera.routes.users', seed: ctx.id, tags: ['users'] })
    .use(auth)
    .post(
      '/user',
      async ({ body, request, server, set }) => {
        if (ctx.config.registration === 'closed') throw new AppError('registration_closed')
        const actor = anonymousActor(clientFacts(ctx, request, server))
        // Counted before any argon2 work: a flood from one client costs one Redis step each.
        await withRedis(() => reserveRegistration(ctx, actor.ip))
        const user = await createUser(ctx, body, actor)
        set.status = 201
        return user
      },
      {
        body: Credentials,
        response: { 201: UserCreated, ...errors(403, 409, 413, 415, 422, 429) },
        detail: {
          summary: 'Register a user',
          description:
            'Creates an account with no permissions. Limited per client address (REGISTRATION_MAX_PER_IP per REGISTRATION_WINDOW, 429 past it); 403 `registration_closed` with REGISTRATION=closed, where an administrator creates accounts (POST /admin/users).',
        },
      },
    )
    .post('/user/assign', ({ body, actor }) => changePermission(ctx, { ...body, actor }, 'grant'), {
      auth: { permission: 'user:assign', fresh: true },
      body: PermissionChangeBody,
      response: { 200: PermissionChangeResult, ...errors(401, 403, 404, 413, 415, 422) },
      detail: {
        summary: 'Grant a permission',
        description:
          "Needs user:assign, and the caller must hold the permission it grants (only a superuser grants superuser). The user's live sessions carry the change on their next request; no new login is needed.",
      },
    })
    .post('/user/unassign', ({ body, actor }) => changePermission(ctx, { ...body, actor }, 'revoke'), {
      auth: { permission: 'user:assign', fresh: true },
      body: PermissionChangeBody,
      response: { 200: PermissionChangeResult, ...errors(401, 403, 404, 409, 413, 415, 422) },
      detail: {
        summary: 'Revoke a permission',
        description:
          "Needs user:assign and the permission itself. A superuser's permissions can be changed only by itself, and the last superuser cannot lose the role. Live sessions lose the permission on their next request.",
      },
    })
}

// Administration under /admin: accounts (user:read to look, user:manage to change) and, from
// ./sessions, sessions (session:revoke; everyone's at once needs superuser).

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { errors } from '../../lib/responses'
import type { authPlugin } from '../auth/plugin'
import { Credentials, UserCreated } from '../users/model'
import { createUser } from '../users/service'
import { AdminUser, UserDeleted, UserIdParams, UserListQuery, UserPage, UserStatusChanged } from './model'
import { deleteUser, getUser, listUsers, setUserDisabled } from './service'
import { adminSessionRoutes } from './sessions'

export function adminRoutes(ctx: AppContext, auth: ReturnType<typeof authPlugin>) {
  return new Elysia({ name: 'tessera.routes.admin', seed: ctx.id, tags: ['admin'] })
    .use(auth)
    .get('/admin/users', ({ query }) => listUsers(ctx, query), {
      auth: 'user:read',
      query: UserListQuery,
      response: { 200: UserPage, ...errors(401, 403, 422) },
      detail: {
        summary: 'List and search users',
        description:
          'Needs user:read. Ordered by id, `limit` per page (default 50, at most 100); pass `nextAfter` back as `after` for the next page. `q` matches a case-insensitive substring of the username; `disabled` filters by state.',
      },
    })
    .post(
      '/admin/users',
      async ({ body, actor, set }) => {
        const user = await createUser(ctx, body, actor)
        set.status = 201
        return user
      },
      {
        auth: { permission: 'user:manage', fresh: true },
        body: Credentials,
        response: { 201: UserCreated, ...errors(401, 403, 409, 413, 415, 422) },
        detail: {
          summary: 'Create a user',
          description:
            'Needs user:manage. Creates an account with no permissions, as registration does, with the caller recorded as the actor; works with REGISTRATION=closed.',
        },
      },
    )
    .get('/admin/users/:id', ({ params }) => getUser(ctx, params.id), {
      auth: 'user:read',
      params: UserIdParams,
      response: { 200: AdminUser, ...errors(401, 403, 404, 422) },
      detail: { summary: 'Read a user', description: 'Needs user:read. The account and its permissions.' },
    })
    .post(
      '/admin/users/:id/disable',
      ({ params, actor }) => setUserDisabled(ctx, { userId: params.id, disabled: true, actor }),
      {
        auth: { permission: 'user:manage', fresh: true },
        params: UserIdParams,
        response: { 200: UserStatusChanged, ...errors(401, 403, 404, 409, 422) },
        detail: {
          summary: 'Disable a user',
          description:
            'Needs user:manage. The user can no longer log in, and every session of theirs ends at once on every instance (outbox row in the same transaction, relayed before the answer). A superuser can be disabled only by itself, and never the last one (409).',
        },
      },
    )
    .post(
      '/admin/users/:id/enable',
      ({ params, actor }) => setUserDisabled(ctx, { userId: params.id, disabled: false, actor }),
      {
        auth: { permission: 'user:manage', fresh: true },
        params: UserIdParams,
        response: { 200: UserStatusChanged, ...errors(401, 403, 404, 422) },
        detail: { summary: 'Enable a user', description: 'Needs user:manage. The user can log in again.' },
      },
    )
    .delete('/admin/users/:id', ({ params, actor }) => deleteUser(ctx, { userId: params.id, actor }), {
      auth: { permission: 'user:manage', fresh: true },
      params: UserIdParams,
      response: { 200: UserDeleted, ...errors(401, 403, 404, 409, 422) },
      detail: {
        summary: 'Delete a user',
        description:
          'Needs user:manage. Deletes the account and its grants and ends every session of theirs at once. A superuser can be deleted only by itself, and never the last one (409).',
      },
    })
    .use(adminSessionRoutes(ctx, auth))
}

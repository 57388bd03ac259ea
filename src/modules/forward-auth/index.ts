// Forward auth for gateways (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz): the original
// request's cookie in, the identity out as response headers. Empty body, never a Set-Cookie.

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { AppError } from '../../lib/errors'
import { cookieFromHeader } from '../../store'
import { createAuthenticator } from '../auth/authenticate'
import { SESSION_SECURITY } from '../docs'
import { hasPermission, isPermission, PERMISSION_NAMES, type Permission } from '../permissions/catalogue'
import { ForwardAuthQuery } from './model'

export const FORWARD_AUTH_PATH = '/auth/verify'

/**
 * True for requests to the forward-auth endpoint. app.ts exempts them from the CSRF origin check:
 * a gateway forwards the original request's Origin (a cross-site POST included), the answer changes
 * nothing here, and the state change it guards happens upstream, which must do its own CSRF check.
 */
export function isForwardAuthRequest(request: Request): boolean {
  const url = request.url
  const start = url.indexOf('/', url.indexOf('//') + 2)
  if (start < 0) return false
  const query = url.indexOf('?', start)
  const path = query < 0 ? url.slice(start) : url.slice(start, query)
  return path === FORWARD_AUTH_PATH || path.startsWith(`${FORWARD_AUTH_PATH}/`)
}

/** A header a gateway can set with the permission(s) a route needs, where a query cannot (Envoy). */
export const PERMISSION_HEADER = 'x-tessera-permission'

/**
 * Every permission named in the query and in the header; all are required. A client can add names
 * (nginx forwards its headers; Envoy its query) but only ever make its own check stricter.
 */
function requiredPermissions(query: readonly string[] | undefined, header: string | null): Permission[] {
  const names = [...(query ?? []), header ?? '']
    .flatMap((list) => list.split(','))
    .map((name) => name.trim())
    .filter(Boolean)
  for (const name of names) {
    // A typo in a gateway's config must fail loudly (nginx turns any answer but 2xx, 401 and 403 into a 500), not quietly pass.
    if (!isPermission(name))
      throw new AppError('unknown_permission', { params: { permission: name }, field: 'permission' })
  }
  return names as Permission[]
}

/** The superuser holds every permission; the header says so, so upstreams need not know the rule. */
function effectivePermissions(held: readonly string[]): string[] {
  return held.includes('superuser') ? [...PERMISSION_NAMES] : [...held]
}

const DESCRIPTION =
  'For nginx `auth_request`, Traefik ForwardAuth and Envoy ext_authz, with any method; `/auth/verify/<anything>` answers the same (Envoy appends the original path to its `path_prefix`). Reads the session cookie of the forwarded request. 200 with `X-User-Id`, `X-User-Name` and `X-User-Permissions` (comma-separated; a superuser is listed with every permission) for a valid session, 401 without one, 403 when the session lacks a permission named in `?permission=` or the `X-Tessera-Permission` header (all named are required). Empty body, no Set-Cookie, no CSRF origin check (the upstream owns its state changes). 422 for an unknown permission name.'

export function forwardAuthRoutes(ctx: AppContext) {
  // Its own authenticator over the same cache: the route must answer 401/403 with an empty body,
  // which the auth macro (JSON errors) does not do. A permission check reads Redis, as the macro's does.
  const authenticate = createAuthenticator(ctx)
  const cookieName = ctx.config.cookieName

  const verify = async ({
    query,
    request,
    set,
  }: {
    query: { permission?: string[] }
    request: Request
    set: { status?: number | string; headers: Record<string, string | number> }
  }) => {
    const required = requiredPermissions(query.permission, request.headers.get(PERMISSION_HEADER))
    const session = await authenticate(cookieFromHeader(request.headers.get('cookie'), cookieName), required.length > 0)
    if (!session) {
      ctx.metrics.authDenied.inc({ reason: 'unauthenticated' })
      set.status = 401
      return ''
    }
    if (!required.every((permission) => hasPermission(session.permissions, permission))) {
      // Counted, not written to the stream: a gateway may ask for every asset of a page.
      ctx.metrics.authDenied.inc({ reason: 'forbidden' })
      set.status = 403
      return ''
    }
    set.headers['x-user-id'] = String(session.userId)
    set.headers['x-user-name'] = session.username
    set.headers['x-user-permissions'] = effectivePermissions(session.permissions).join(',')
    return ''
  }

  // Every method is served alike, but documented once (as GET, with one operationId): an `all`
  // route would be listed under each of eight methods with the same operationId.
  return new Elysia({ name: 'tessera.routes.forward-auth', seed: ctx.id, tags: ['gateway'] })
    .all(FORWARD_AUTH_PATH, verify, { query: ForwardAuthQuery, detail: { hide: true } })
    .get(FORWARD_AUTH_PATH, verify, {
      query: ForwardAuthQuery,
      detail: {
        operationId: 'forwardAuth',
        summary: 'Forward auth (gateways)',
        security: [...SESSION_SECURITY, {}],
        description: DESCRIPTION,
        responses: {
          200: {
            description: 'Valid session with every required permission; identity in the headers.',
            headers: {
              'X-User-Id': { schema: { type: 'string' } },
              'X-User-Name': { schema: { type: 'string' } },
              'X-User-Permissions': { schema: { type: 'string' } },
            },
          },
          401: { description: 'No valid session. Empty body.' },
          403: { description: 'Valid session lacking a required permission. Empty body.' },
          422: { description: 'An unknown permission name.' },
          503: { description: 'Redis unreachable: neither allowed nor refused; the gateway should fail closed.' },
        },
      },
    })
    .all(`${FORWARD_AUTH_PATH}/*`, verify, { query: ForwardAuthQuery, detail: { hide: true } })
}

// An Elysia plugin for other services: the same `auth` and `permission` macros as Tessera's own,
// backed by verifySession over the shared Redis.

import { Elysia } from 'elysia'
import { hasPermission, type Permission } from './modules/permissions/catalogue'
import type { RedisClient } from './store/client'
import { cookieFromHeader, type VerifiedSession, verifySession } from './verify'

export interface TesseraAuthOptions {
  redis: RedisClient
  /** Tessera's cookie name: `__Host-sid` by default, `sid` when COOKIE_SECURE=false. */
  cookieName?: string
  /** Tessera's REDIS_KEY_PREFIX. Default `tessera:`. */
  prefix?: string
  /** Tessera's REDIS_PARTITIONS (see verifySession). */
  partitions?: number
  /** Tessera's SESSION_IDLE_TIMEOUT in ms (optional; see verifySession). */
  idleTimeoutMs?: number
  now?: () => number
}

/**
 * `{ auth: true }` answers 401 without a valid session; `{ permission: 'user:read' }` also 403
 * without that permission. Both hand the handler `session`. One Redis read per request at most.
 */
export function tesseraAuth(options: TesseraAuthOptions) {
  const { redis, cookieName = '__Host-sid', prefix, partitions, idleTimeoutMs, now = Date.now } = options
  // A route with both macros reads Redis once: the pending answer rides on the request, under a
  // symbol no other code holds (cheaper than a WeakMap entry per request).
  const OUTCOME = Symbol('tessera.session')
  type Carrying = Request & { [OUTCOME]?: Promise<VerifiedSession | null> }
  // The token is read from the Cookie header as Tessera's own plugin does, not from Elysia's jar.
  const sessionFor = (request: Carrying) => {
    let outcome = request[OUTCOME]
    if (!outcome) {
      const token = cookieFromHeader(request.headers.get('cookie'), cookieName)
      outcome = verifySession(redis, token, { prefix, partitions, idleTimeoutMs, now: now() })
      request[OUTCOME] = outcome
    }
    return outcome
  }

  return new Elysia({ name: 'tessera.verify', seed: `${cookieName}|${prefix ?? ''}|${partitions ?? ''}` }).macro({
    auth: {
      async resolve({ request, status }) {
        const session = await sessionFor(request)
        if (!session) return status(401, 'Unauthorized')
        return { session }
      },
    },
    permission: (permission: Permission) => ({
      async resolve({ request, status }) {
        const session = await sessionFor(request)
        if (!session) return status(401, 'Unauthorized')
        if (!hasPermission(session.permissions, permission)) return status(403, 'Forbidden')
        return { session }
      },
    }),
  })
}

export type { VerifiedSession } from './verify'

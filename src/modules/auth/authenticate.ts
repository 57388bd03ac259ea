// Turns a cookie value into a live session, or nothing: the single session lookup of a request.

import type { AppContext } from '../../context'
import { withRedis } from '../../lib/errors'
import { describeError } from '../../lib/logger'
import { deleteSession, isSessionLive, needsTouch, readSession, type Session, touchSession } from '../sessions/store'
import { hashToken, isWellFormedToken } from '../sessions/token'

export type Authenticate = (cookieValue: unknown) => Promise<Session | undefined>

export function createAuthenticator(ctx: AppContext): Authenticate {
  const { store, config, logger } = ctx

  // Expired sessions found on read are removed (and announced) off the request path.
  const endExpired = (session: Session, now: number) => {
    const reason = now >= session.expiresAt ? 'absolute_timeout' : 'idle_timeout'
    deleteSession(
      store,
      session,
      { type: 'session_revoked', reason, instance: config.instanceId, actorId: 0, subjectId: session.userId },
      now,
    ).catch((error) => logger.debug('expired session cleanup failed', { error: describeError(error) }))
  }

  return async function authenticate(cookieValue) {
    // Validated before it touches Redis or a log: anything but a 43-character base64url token is
    // simply "no session".
    if (!isWellFormedToken(cookieValue)) return undefined
    const tokenHash = await hashToken(cookieValue)
    const session = await withRedis(() => readSession(store, tokenHash))
    if (!session) return undefined
    const now = ctx.now()
    if (!isSessionLive(session, now, store.idleTimeoutMs)) {
      endExpired(session, now)
      return undefined
    }
    if (needsTouch(store, session, now)) {
      await withRedis(() => touchSession(store, tokenHash, now))
      session.lastSeenAt = now
    }
    return session
  }
}

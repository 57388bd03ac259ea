// Listing sessions, and every way a session ends: logout and a cookie replaced at login (by token),
// by its owner or an administrator (by public id, one user's, everyone's), and expiry found on
// read. Every ending is one Lua step in Redis with the event that announces it; this instance's
// cache forgets it at once, the others when their event tailer reads the event.

import type { AppContext } from '../../context'
import { AppError, withRedis } from '../../lib/errors'
import { describeError } from '../../lib/logger'
import {
  deleteSession,
  deleteSessionByPublicId,
  endSessionByHash,
  hashToken,
  listUserSessions,
  type OwnerEvent,
  parseCookieValue,
  revokeEverySession,
  revokeUserSessions,
  type Session,
} from '../../store'
import { type Actor, actorEventFields } from '../auth/client'
import { iso, type SessionView as SessionViewSchema } from './model'

export type { Actor } from '../auth/client'

export type SessionView = typeof SessionViewSchema.static

/** What a listing may show: built field by field, so the token hash can never slip through. */
export function toSessionView(session: Session, currentTokenHash: string | undefined): SessionView {
  return {
    id: session.publicId,
    createdAt: iso(session.createdAt),
    lastSeenAt: iso(session.lastSeenAt),
    expiresAt: iso(session.expiresAt),
    ip: session.ip,
    userAgent: session.userAgent,
    current: session.tokenHash === currentTokenHash,
  }
}

export async function listSessions(
  ctx: AppContext,
  userId: number,
  currentTokenHash: string | undefined,
): Promise<SessionView[]> {
  const sessions = await withRedis(() => listUserSessions(ctx.store, userId, ctx.now()))
  return sessions.map((session) => toSessionView(session, currentTokenHash))
}

export const sessionNotFound = () => new AppError('session_not_found')

/** Ends one of `userId`'s sessions by public id; 404 when that user has no such session. */
export async function endSession(
  ctx: AppContext,
  input: { userId: number; publicId: string; actor: Actor; reason: string },
): Promise<{ tokenHash: string }> {
  const { userId, actor } = input
  const tokenHash = await withRedis(() =>
    deleteSessionByPublicId(ctx.store, {
      userId,
      publicId: input.publicId,
      event: {
        type: 'session_revoked',
        reason: input.reason,
        ...actorEventFields(ctx, actor, userId),
      },
      now: ctx.now(),
    }),
  )
  if (!tokenHash) throw sessionNotFound()
  ctx.sessionCache?.delete(tokenHash)
  return { tokenHash }
}

/** Ends all of `userId`'s sessions but `exceptTokenHash`; returns how many ended. */
export async function endUserSessions(
  ctx: AppContext,
  input: { userId: number; exceptTokenHash?: string; actor: Actor; reason: string },
): Promise<number> {
  const { userId, actor } = input
  const ended = await withRedis(() =>
    revokeUserSessions(ctx.store, {
      userId,
      exceptTokenHash: input.exceptTokenHash,
      // Recorded even when nothing was live: the decision is worth an audit line of its own.
      always: true,
      event: {
        type: 'user_sessions_revoked',
        reason: input.reason,
        ...actorEventFields(ctx, actor, userId),
      },
      now: ctx.now(),
    }),
  )
  ctx.sessionCache?.deleteUser(userId)
  return Math.max(0, ended)
}

/** Ends every session of every user but the caller's own current one, if any (superuser only, see admin). */
export async function endEverySession(
  ctx: AppContext,
  input: { actor: Actor; exceptTokenHash?: string; reason: string },
): Promise<{ users: number; sessions: number }> {
  const { actor } = input
  const result = await withRedis(() =>
    revokeEverySession(ctx.store, {
      exceptTokenHash: input.exceptTokenHash,
      event: { reason: input.reason, ...actorEventFields(ctx, actor, 0) },
      now: ctx.now(),
    }),
  )
  ctx.sessionCache?.clear()
  return result
}

/**
 * Ends the session a cookie value names, whoever owns it, read and ended in one step by the token's
 * hash alone (logout, and a cookie presented at login). True when a live session ended.
 */
export async function endSessionByToken(
  ctx: AppContext,
  presented: unknown,
  event: OwnerEvent,
  now: number,
): Promise<boolean> {
  const cookie = parseCookieValue(presented, ctx.store.partitions)
  if (!cookie) return false
  const tokenHash = hashToken(cookie.token)
  ctx.sessionCache?.delete(tokenHash)
  return (
    (await withRedis(() => endSessionByHash(ctx.store, { partition: cookie.partition, tokenHash }, event, now))) !==
    undefined
  )
}

/** Removes (and announces) a session found expired on read, off the request path. */
export function endExpiredSession(ctx: AppContext, session: Session, now: number): void {
  ctx.sessionCache?.delete(session.tokenHash)
  const reason = now >= session.expiresAt ? 'absolute_timeout' : 'idle_timeout'
  deleteSession(
    ctx.store,
    session,
    { type: 'session_revoked', reason, instance: ctx.config.instanceId, actorId: 0, subjectId: session.userId },
    now,
  ).catch((error) => ctx.logger.debug('expired session cleanup failed', { error: describeError(error) }))
}

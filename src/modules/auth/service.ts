// Proofs of password: login (argon2id verification that costs the same for unknown users, a fresh
// token on every login, the presented session ended so no token survives a login), logout, and
// the re-authentication of a live session.

import { and, eq } from 'drizzle-orm'
import type { AppContext } from '../../context'
import { users } from '../../db/schema'
import { AppError, withPostgres, withRedis } from '../../lib/errors'
import { normalizeUsername } from '../../lib/limits'
import { describeError } from '../../lib/logger'
import {
  AccountClosedError,
  appendEvent,
  cookieValue,
  createSession,
  reauthenticateSession,
  type Session,
  type SessionCookie,
} from '../../store'
import { endSessionByToken } from '../sessions/service'
import { getDummyHash, hashPassword, needsRehash, verifyPassword } from '../users/password'
import { findUserByUsername } from '../users/repository'
import { type Actor, actorEventFields } from './client'
import { loginLimitKeys, releaseLoginAttempt, reserveLoginAttempt, tooManyAttempts } from './rate-limit'

export interface LoginInput {
  username: string
  password: string
  ip: string
  userAgent: string
  /** Whatever session cookie came with the login request; it is ended, never reused. */
  presentedToken: unknown
}

export const invalidCredentials = () => new AppError('invalid_credentials')

export async function login(ctx: AppContext, input: LoginInput): Promise<{ token: string; session: Session }> {
  const { store, config } = ctx
  const instance = config.instanceId
  const failed = (reason: 'rate_limited' | 'bad_credentials' | 'disabled', subjectId: number) =>
    withRedis(() =>
      appendEvent(
        store,
        {
          type: 'login_failed',
          username: input.username,
          reason,
          instance,
          actorId: 0,
          subjectId,
          ip: input.ip,
          userAgent: input.userAgent,
        },
        ctx.now(),
      ),
    )
  // A name registration would refuse is an unknown user: it is never looked up.
  const username = normalizeUsername(input.username)
  const limitKeys = loginLimitKeys(ctx, username ?? input.username, input.ip)
  // An outage is not a failed guess: the attempt counted up front is given back (best effort).
  const giveAttemptBack = () => releaseLoginAttempt(ctx, limitKeys, false).catch(() => {})
  // The attempt is counted as failed up front, so parallel guesses meet the limit too. The user is
  // read at the same moment: one wait instead of two, at the price of a wasted read when limited.
  const [reserved, found] = await Promise.allSettled([
    withRedis(() => reserveLoginAttempt(ctx, limitKeys)),
    username === undefined ? undefined : withPostgres(() => findUserByUsername(ctx.db, username)),
  ])
  if (reserved.status === 'rejected') throw reserved.reason
  const refusal = reserved.value
  if (refusal) {
    ctx.metrics.logins.inc({ outcome: 'rate_limited' })
    // Announced once per window and limit; every refusal after it is only counted, so a client
    // hammering a limit cannot flood the stream (and trim real history out of it).
    if (refusal.first) await failed('rate_limited', 0)
    throw tooManyAttempts(refusal.waitMs)
  }
  if (found.status === 'rejected') {
    await giveAttemptBack()
    throw found.reason
  }
  const user = found.value
  // Always one argon2 verification, against a dummy hash for unknown users: same work, same time.
  const passwordOk = await verifyPassword(user?.passwordHash ?? (await getDummyHash()), input.password)

  if (!user || !passwordOk || user.disabled) {
    await failed(user && passwordOk ? 'disabled' : 'bad_credentials', user?.id ?? 0)
    ctx.metrics.logins.inc({ outcome: 'failed' })
    // One answer for unknown user, wrong password and disabled account alike.
    throw invalidCredentials()
  }

  const now = ctx.now()
  // Session fixation defence: a token presented at login is ended, whoever it belongs to. First, and
  // on its own: if ending it fails, the login fails before a session nobody holds (and an event
  // announcing a login that never answered) exists. Only a login that sends a cookie waits twice.
  try {
    await endSessionByToken(
      ctx,
      input.presentedToken,
      { type: 'session_revoked', reason: 'replaced_at_login', instance: ctx.config.instanceId },
      now,
    )
  } catch (error) {
    await giveAttemptBack()
    throw error
  }
  let created: { cookie: SessionCookie; session: Session }
  try {
    // The store refuses a session to an account disabled (or deleted, or given a new password)
    // after it was read above, which a disable's relay marks in Redis.
    created = await withRedis(() =>
      createSession(store, {
        user,
        ip: input.ip,
        userAgent: input.userAgent,
        now,
        event: {
          type: 'login_succeeded',
          username: user.username,
          instance,
          actorId: user.id,
          subjectId: user.id,
          ip: input.ip,
          userAgent: input.userAgent,
        },
      }),
    )
  } catch (error) {
    if (!(error instanceof AccountClosedError)) {
      await giveAttemptBack()
      throw error
    }
    await failed('disabled', user.id)
    ctx.metrics.logins.inc({ outcome: 'failed' })
    throw invalidCredentials()
  }
  // The attempt counted up front is given back, and the account-and-client counter cleared. Should
  // Redis fail right now, the login stands and the attempt stays counted until its window ends.
  await releaseLoginAttempt(ctx, limitKeys, true).catch(() => {})
  ctx.metrics.logins.inc({ outcome: 'succeeded' })
  // Off the request path: the login answers without waiting for a second argon2 run.
  if (needsRehash(user.passwordHash)) void upgradePasswordHash(ctx, user.id, user.passwordHash, input.password)
  return { token: cookieValue(created.cookie, store.partitions), session: created.session }
}

/**
 * Re-hashes with the current argon2 parameters. Compare-and-set on the hash the login verified: a
 * password change committed meanwhile is never reverted (the upgrade then changes nothing). A
 * failure only postpones the upgrade to the next login. Resolves to whether the hash was replaced.
 */
export async function upgradePasswordHash(
  ctx: AppContext,
  userId: number,
  verifiedHash: string,
  password: string,
): Promise<boolean> {
  try {
    const passwordHash = await hashPassword(password)
    const replaced = await ctx.db
      .update(users)
      .set({ passwordHash, updatedAt: new Date() })
      .where(and(eq(users.id, userId), eq(users.passwordHash, verifiedHash)))
      .returning({ id: users.id })
    return replaced.length > 0
  } catch (error) {
    ctx.logger.warn('password hash upgrade failed', { userId, error: describeError(error) })
    return false
  }
}

/** Ends the session of the presented cookie, if it names a live one; true when one ended. */
export function logout(ctx: AppContext, presented: unknown, ip: string, userAgent: string): Promise<boolean> {
  return endSessionByToken(
    ctx,
    presented,
    { type: 'logout', instance: ctx.config.instanceId, ip, userAgent },
    ctx.now(),
  )
}

/**
 * Checks the password of the session's own account, rate-limited and counted exactly like a login
 * (a stolen cookie cannot guess the password any faster): counted as failed up front, given back
 * once it proved right. A wrong one is 403 `wrong_password` naming `field`, not 401: the session
 * is fine, and a 401 would make many clients drop it. Returns the stored hash it verified.
 */
export async function proveOwnPassword(
  ctx: AppContext,
  input: { session: Session; actor: Actor; password: string; field: string },
): Promise<string> {
  const { session, actor } = input
  const limitKeys = loginLimitKeys(ctx, normalizeUsername(session.username) ?? session.username, actor.ip)
  const refusal = await withRedis(() => reserveLoginAttempt(ctx, limitKeys))
  if (refusal) throw tooManyAttempts(refusal.waitMs)
  let user: { passwordHash: string; disabled: boolean } | undefined
  let passwordOk = false
  try {
    const rows = await withPostgres(() =>
      ctx.db
        .select({ passwordHash: users.passwordHash, disabled: users.disabled })
        .from(users)
        .where(eq(users.id, session.userId)),
    )
    user = rows[0]
    if (!user || user.disabled) throw new AppError('unauthenticated')
    passwordOk = await verifyPassword(user.passwordHash, input.password)
  } catch (error) {
    // Ended for a reason other than the password: the attempt is given back.
    await releaseLoginAttempt(ctx, limitKeys, false).catch(() => {})
    throw error
  }
  if (!passwordOk) {
    await withRedis(() =>
      appendEvent(
        ctx.store,
        {
          type: 'login_failed',
          username: session.username,
          reason: 'bad_credentials',
          ...actorEventFields(ctx, actor, session.userId),
        },
        ctx.now(),
      ),
    )
    throw new AppError('wrong_password', { field: input.field })
  }
  await withRedis(() => releaseLoginAttempt(ctx, limitKeys, true))
  return user.passwordHash
}

/**
 * Step-up re-authentication: the session proves the password again and counts as fresh for
 * routes that need a recent proof (`{ auth: { fresh } }`), without a new token. Returns the new
 * authenticatedAt.
 */
export async function reauthenticate(
  ctx: AppContext,
  input: { session: Session; actor: Actor; password: string },
): Promise<number> {
  const { session, actor } = input
  await proveOwnPassword(ctx, { ...input, field: 'password' })
  const now = ctx.now()
  const live = await withRedis(() =>
    reauthenticateSession(ctx.store, {
      session,
      event: { type: 'session_reauthenticated', ...actorEventFields(ctx, actor, session.userId) },
      now,
    }),
  )
  ctx.sessionCache?.delete(session.tokenHash)
  if (!live) throw new AppError('unauthenticated')
  return now
}

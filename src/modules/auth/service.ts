// Login and logout: argon2id verification that costs the same for unknown users, a fresh token on
// every login, and the presented session (if any) ended so no token survives a login.

import { eq } from 'drizzle-orm'
import type { AppContext } from '../../context'
import { users } from '../../db/schema'
import { AppError, withPostgres, withRedis } from '../../lib/errors'
import { describeError } from '../../lib/logger'
import { appendEvent, createSession, deleteSession, readSession, type Session } from '../sessions/store'
import { hashToken, isWellFormedToken } from '../sessions/token'
import { getDummyHash, hashPassword, needsRehash, verifyPassword } from '../users/password'
import { findUserByUsername, isUserEnabled } from '../users/service'
import { releaseLoginAttempt, reserveLoginAttempt } from './rate-limit'

export interface LoginInput {
  username: string
  password: string
  ip: string
  userAgent: string
  /** Whatever session cookie came with the login request; it is ended, never reused. */
  presentedToken: unknown
}

export const invalidCredentials = () => new AppError(401, 'invalid_credentials', 'Invalid username or password.')

export async function login(ctx: AppContext, input: LoginInput): Promise<{ token: string; session: Session }> {
  const { store, config } = ctx
  const instance = config.instanceId
  try {
    // Counts the attempt as failed up front, so parallel guesses meet the limit too.
    await withRedis(() => reserveLoginAttempt(ctx, input.username, input.ip))
  } catch (error) {
    if (error instanceof AppError && error.status === 429) {
      ctx.metrics.increment('tessera_logins_total', { outcome: 'rate_limited' })
      await withRedis(() =>
        appendEvent(
          store,
          {
            type: 'login_failed',
            username: input.username,
            reason: 'rate_limited',
            instance,
            actorId: 0,
            subjectId: 0,
            ip: input.ip,
            userAgent: input.userAgent,
          },
          ctx.now(),
        ),
      )
    }
    throw error
  }
  const user = await withPostgres(() => findUserByUsername(ctx.db, input.username)).catch(async (error) => {
    // A database outage is not a failed guess: give the attempt back.
    await releaseLoginAttempt(ctx, input.username, input.ip, false).catch(() => {})
    throw error
  })
  // Always one argon2 verification, against a dummy hash for unknown users: same work, same time.
  const passwordOk = await verifyPassword(user?.passwordHash ?? (await getDummyHash()), input.password)

  if (!user || !passwordOk || user.disabled) {
    const now = ctx.now()
    await withRedis(async () => {
      await appendEvent(
        store,
        {
          type: 'login_failed',
          username: input.username,
          reason: user && passwordOk ? 'disabled' : 'bad_credentials',
          instance,
          actorId: 0,
          subjectId: user?.id ?? 0,
          ip: input.ip,
          userAgent: input.userAgent,
        },
        now,
      )
    })
    ctx.metrics.increment('tessera_logins_total', { outcome: 'failed' })
    // One answer for unknown user, wrong password and disabled account alike.
    throw invalidCredentials()
  }

  const now = ctx.now()
  await endPresentedSession(ctx, input.presentedToken, now)
  const created = await withRedis(() =>
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
  // The account may have been disabled (and its sessions ended) while argon2 ran: look again now that
  // the session exists. A disable committed after this read finds the session in the user's index.
  if (!(await withPostgres(() => isUserEnabled(ctx.db, user.id)))) {
    await withRedis(() =>
      deleteSession(
        store,
        created.session,
        { type: 'session_revoked', reason: 'user_disabled', instance, actorId: 0, subjectId: user.id },
        ctx.now(),
      ),
    )
    throw invalidCredentials()
  }
  await withRedis(() => releaseLoginAttempt(ctx, input.username, input.ip, true))
  ctx.metrics.increment('tessera_logins_total', { outcome: 'succeeded' })
  if (needsRehash(user.passwordHash)) await upgradePasswordHash(ctx, user.id, input.password)
  return created
}

/** Session fixation defence: a token presented at login is ended, whoever it belongs to. */
async function endPresentedSession(ctx: AppContext, presented: unknown, now: number): Promise<void> {
  if (!isWellFormedToken(presented)) return
  const tokenHash = hashToken(presented)
  await withRedis(async () => {
    const previous = await readSession(ctx.store, tokenHash)
    if (!previous) return
    await deleteSession(
      ctx.store,
      previous,
      {
        type: 'session_revoked',
        reason: 'replaced_at_login',
        instance: ctx.config.instanceId,
        actorId: previous.userId,
        subjectId: previous.userId,
      },
      now,
    )
  })
}

/** Re-hashes with the current argon2 parameters; a failure only postpones it to the next login. */
async function upgradePasswordHash(ctx: AppContext, userId: number, password: string): Promise<void> {
  try {
    const passwordHash = await hashPassword(password)
    await ctx.db.update(users).set({ passwordHash, updatedAt: new Date() }).where(eq(users.id, userId))
  } catch (error) {
    ctx.logger.warn('password hash upgrade failed', { userId, error: describeError(error) })
  }
}

export async function logout(ctx: AppContext, session: Session, ip: string, userAgent: string): Promise<boolean> {
  // Other instances evict when the logout event reaches them; this one need not wait for it.
  ctx.sessionCache?.delete(session.tokenHash)
  return withRedis(() =>
    deleteSession(
      ctx.store,
      session,
      {
        type: 'logout',
        instance: ctx.config.instanceId,
        actorId: session.userId,
        subjectId: session.userId,
        ip,
        userAgent,
      },
      ctx.now(),
    ),
  )
}

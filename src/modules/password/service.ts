// Changing one's own password: verify the current one (rate-limited like a login), store the new
// hash with its outbox rows in one transaction, and move the caller's session to a new token.

import { eq } from 'drizzle-orm'
import type { AppContext } from '../../context'
import { users } from '../../db/schema'
import { AppError, withPostgres, withRedis } from '../../lib/errors'
import type { Session } from '../../store'
import { generateToken, hashToken, publicIdFor, rotateSession } from '../../store'
import { type Actor, actorEventFields } from '../auth/client'
import { proveOwnPassword } from '../auth/service'
import { enqueueOutbox, relayNow } from '../outbox'
import { hashPassword } from '../users/password'
import { assertMayActOn } from '../users/policy'
import { updateBumpingVersion } from '../users/repository'

export interface PasswordChange {
  session: Session
  actor: Actor
  currentPassword: string
  newPassword: string
  keepOtherSessions: boolean
}

export interface PasswordChangeOutcome {
  /** The rotated session's new token for the cookie; undefined if the session ended meanwhile. */
  token: string | undefined
  /** The rotated session's public id, as GET /sessions will list it. */
  publicId: string
  otherSessionsEnded: boolean
  propagated: boolean
}

export async function changePassword(ctx: AppContext, input: PasswordChange): Promise<PasswordChangeOutcome> {
  const { session } = input
  const userId = session.userId
  // The current password is this change's re-authentication (see proveOwnPassword).
  const oldHash = await proveOwnPassword(ctx, {
    session,
    actor: input.actor,
    password: input.currentPassword,
    field: 'currentPassword',
  })

  const passwordHash = await hashPassword(input.newPassword)
  // The new token exists before the commit so the outbox row can spare it: however late the relay
  // runs, it ends every session but the rotated one.
  const token = generateToken()
  const newTokenHash = hashToken(token)
  const at = ctx.now()
  const actor = actorEventFields(ctx, input.actor, userId)
  const outboxIds = await withPostgres(() =>
    ctx.db.transaction(async (tx) => {
      // Compare-and-set on the old hash: of two concurrent changes, the second one fails.
      const version = await updateBumpingVersion(tx, userId, { passwordHash }, eq(users.passwordHash, oldHash))
      if (version === undefined) {
        throw new AppError('password_changed_concurrently')
      }
      const ids: number[] = []
      if (!input.keepOtherSessions) {
        ids.push(
          await enqueueOutbox(tx, {
            kind: 'revoke_user',
            at,
            userId,
            always: false,
            exceptTokenHash: newTokenHash,
            // A login still verifying the old password must not open a session afterwards.
            openFromVersion: version,
            event: { type: 'user_sessions_revoked', reason: 'password_changed', ...actor },
          }),
        )
      }
      ids.push(await enqueueOutbox(tx, { kind: 'event', at, event: { type: 'password_changed', ...actor } }))
      return ids
    }),
  )

  // Rotation before the relay: the relayed revocation then finds the new token and spares it.
  const rotated = await withRedis(() =>
    rotateSession(ctx.store, {
      session,
      newTokenHash,
      event: { type: 'session_revoked', reason: 'rotated_password_changed', ...actor },
      now: at,
    }),
  )
  ctx.sessionCache?.delete(session.tokenHash)
  const propagated = await relayNow(ctx, outboxIds)
  if (!input.keepOtherSessions) ctx.sessionCache?.deleteUser(userId)
  return {
    token: rotated ? token : undefined,
    publicId: publicIdFor(newTokenHash),
    otherSessionsEnded: !input.keepOtherSessions,
    propagated,
  }
}

/**
 * Sets a user's password without the current one (an administrator's reset; today only the admin
 * CLI's operator calls it) and ends every session of theirs: the new hash, the version bump and the
 * outbox rows in one transaction, relayed before it returns. Under the policy like any change to
 * another user's account (a superuser's is reset only by itself or an operator).
 */
export async function resetPassword(
  ctx: AppContext,
  input: { userId: number; newPassword: string; actor: Actor },
): Promise<{ propagated: boolean }> {
  const { userId } = input
  const passwordHash = await hashPassword(input.newPassword)
  const at = ctx.now()
  const actor = actorEventFields(ctx, input.actor, userId)
  const outboxIds = await withPostgres(() =>
    ctx.db.transaction(async (tx) => {
      const [target] = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('no key update')
      if (!target) throw new AppError('user_not_found')
      await assertMayActOn(tx, { actor: input.actor, targetId: userId, action: 'change_account' })
      const version = (await updateBumpingVersion(tx, userId, { passwordHash })) ?? 0
      return [
        await enqueueOutbox(tx, {
          kind: 'revoke_user',
          at,
          userId,
          always: false,
          // A login still verifying the old password must not open a session afterwards.
          openFromVersion: version,
          event: { type: 'user_sessions_revoked', reason: 'password_reset', ...actor },
        }),
        await enqueueOutbox(tx, { kind: 'event', at, event: { type: 'password_changed', ...actor } }),
      ]
    }),
  )
  const propagated = await relayNow(ctx, outboxIds)
  ctx.sessionCache?.deleteUser(userId)
  return { propagated }
}

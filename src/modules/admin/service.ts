// Administration of accounts: list, read, disable, enable, delete. Changes that must end sessions
// go through the outbox in the same transaction and are relayed before the request answers.

import { and, asc, eq, gt, ilike } from 'drizzle-orm'
import type { AppContext } from '../../context'
import type { Tx } from '../../db/client'
import { grants, users } from '../../db/schema'
import { AppError, withPostgres } from '../../lib/errors'
import { type Actor, actorEventFields } from '../auth/client'
import { enqueueOutbox, type OutboxMessage, relayNow } from '../outbox'
import { assertAnotherSuperuser, assertMayActOn, mayReadUsers } from '../users/policy'
import {
  findUserView,
  lockSuperusers,
  superusersAmong,
  toUserView,
  type UserView,
  updateBumpingVersion,
  userViewColumns,
} from '../users/repository'

export type { UserView } from '../users/repository'

const userNotFound = () => new AppError('user_not_found')

/** LIKE wildcards in a search string match themselves. */
const likeEscape = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

export interface UserQuery {
  q?: string
  disabled?: boolean
  after?: number
  limit?: number
}

/** One page of users ordered by id (keyset pagination: stable while users are added or removed). */
export async function listUsers(
  ctx: AppContext,
  query: UserQuery,
): Promise<{ users: UserView[]; nextAfter: number | null }> {
  const limit = query.limit ?? 50
  const rows = await withPostgres(() =>
    ctx.db
      .select(userViewColumns)
      .from(users)
      .leftJoin(grants, eq(grants.userId, users.id))
      .where(
        and(
          query.q ? ilike(users.username, `%${likeEscape(query.q)}%`) : undefined,
          query.disabled === undefined ? undefined : eq(users.disabled, query.disabled),
          query.after === undefined ? undefined : gt(users.id, query.after),
        ),
      )
      .groupBy(users.id)
      .orderBy(asc(users.id))
      .limit(limit + 1),
  )
  const page = rows.slice(0, limit).map(toUserView)
  return { users: page, nextAfter: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null }
}

export async function getUser(ctx: AppContext, userId: number): Promise<UserView> {
  const user = await withPostgres(() => findUserView(ctx.db, userId))
  if (!user) throw userNotFound()
  return user
}

/** Locks the target (every superuser first, see lockSuperusers) and applies the policy to it. */
async function lockTarget(tx: Tx, userId: number, actor: Actor, forDelete: boolean) {
  await lockSuperusers(tx)
  const [target] = await tx
    .select({ id: users.id, username: users.username, disabled: users.disabled })
    .from(users)
    .where(eq(users.id, userId))
    .for(forDelete ? 'update' : 'no key update')
  if (!target) throw userNotFound()
  await assertMayActOn(tx, { actor, targetId: userId, action: 'change_account' })
  if ((await superusersAmong(tx, [userId])).has(userId)) await assertAnotherSuperuser(tx, userId)
  return target
}

export interface UserStatusChange {
  id: number
  disabled: boolean
  /** The account after the change: only for callers who may read users (policy.ts). */
  user?: UserView
  changed: boolean
  propagated: boolean
}

/** Disables (ending every session at once) or enables an account. */
export async function setUserDisabled(
  ctx: AppContext,
  input: { userId: number; disabled: boolean; actor: Actor },
): Promise<UserStatusChange> {
  const { userId, disabled, actor } = input
  const at = ctx.now()
  const result = await withPostgres(() =>
    ctx.db.transaction(async (tx) => {
      // Enabling needs no protection: it takes nothing away from anyone.
      const target = disabled
        ? await lockTarget(tx, userId, actor, false)
        : (
            await tx
              .select({ id: users.id, disabled: users.disabled })
              .from(users)
              .where(eq(users.id, userId))
              .for('no key update')
          )[0]
      if (!target) throw userNotFound()
      let outboxId: number | undefined
      if (target.disabled !== disabled) {
        const version = await updateBumpingVersion(tx, userId, { disabled })
        const message: OutboxMessage = disabled
          ? {
              kind: 'revoke_user',
              at,
              userId,
              always: true,
              openFromVersion: version,
              event: { type: 'user_disabled', ...actorEventFields(ctx, actor, userId) },
            }
          : { kind: 'event', at, event: { type: 'user_enabled', ...actorEventFields(ctx, actor, userId) } }
        outboxId = await enqueueOutbox(tx, message)
      }
      const user = mayReadUsers(actor.permissions) ? await findUserView(tx, userId) : undefined
      return { user, outboxId }
    }),
  )
  const propagated = result.outboxId === undefined ? true : await relayNow(ctx, [result.outboxId])
  if (disabled) ctx.sessionCache?.deleteUser(userId)
  return {
    id: userId,
    disabled,
    ...(result.user ? { user: result.user } : {}),
    changed: result.outboxId !== undefined,
    propagated,
  }
}

/** Deletes an account (its grants go with it) and ends every session it had. */
export async function deleteUser(
  ctx: AppContext,
  input: { userId: number; actor: Actor },
): Promise<{ id: number; username?: string; propagated: boolean }> {
  const { userId, actor } = input
  const at = ctx.now()
  const result = await withPostgres(() =>
    ctx.db.transaction(async (tx) => {
      const target = await lockTarget(tx, userId, actor, true)
      const version = await updateBumpingVersion(tx, userId, {})
      await tx.delete(users).where(eq(users.id, userId))
      const outboxId = await enqueueOutbox(tx, {
        kind: 'revoke_user',
        at,
        userId,
        always: true,
        openFromVersion: version,
        event: { type: 'user_deleted', ...actorEventFields(ctx, actor, userId) },
      })
      return { target, outboxId }
    }),
  )
  const propagated = await relayNow(ctx, [result.outboxId])
  ctx.sessionCache?.deleteUser(userId)
  return {
    id: result.target.id,
    ...(mayReadUsers(actor.permissions) ? { username: result.target.username } : {}),
    propagated,
  }
}

/** 404 for unknown users; the policy's rule on a superuser's sessions (policy.ts). */
export async function assertMayManageSessionsOf(ctx: AppContext, actor: Actor, userId: number): Promise<void> {
  await withPostgres(async () => {
    const [target] = await ctx.db.select({ id: users.id }).from(users).where(eq(users.id, userId))
    if (!target) throw userNotFound()
    await assertMayActOn(ctx.db, { actor, targetId: userId, action: 'manage_sessions' })
  })
}

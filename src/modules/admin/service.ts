// Administration of accounts: list, read, disable, enable, delete. Changes that must end sessions
// go through the outbox in the same transaction and are relayed before the request answers.

import { and, asc, eq, gt, ilike, inArray, sql } from 'drizzle-orm'
import type { AppContext } from '../../context'
import type { Db, Tx } from '../../db/client'
import { grants, users } from '../../db/schema'
import { AppError, withPostgres } from '../../lib/errors'
import { type Actor, actorEventFields } from '../auth/client'
import { enqueueOutbox, type OutboxMessage, relayNow } from '../outbox'
import { assertAnotherSuperuser, lockSuperusers, updateBumpingVersion } from '../users/service'

export interface AdminUserView {
  id: number
  username: string
  disabled: boolean
  permissions: string[]
  createdAt: string
  updatedAt: string
}

const userNotFound = () => new AppError('user_not_found')

const userColumns = {
  id: users.id,
  username: users.username,
  disabled: users.disabled,
  createdAt: users.createdAt,
  updatedAt: users.updatedAt,
  permissions: sql<
    string[]
  >`coalesce(array_agg(${grants.permission} order by ${grants.permission}) filter (where ${grants.permission} is not null), '{}')`,
}

function toView(row: {
  id: number
  username: string
  disabled: boolean
  permissions: string[]
  createdAt: Date
  updatedAt: Date
}): AdminUserView {
  return {
    id: row.id,
    username: row.username,
    disabled: row.disabled,
    permissions: row.permissions,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  }
}

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
): Promise<{ users: AdminUserView[]; nextAfter: number | null }> {
  const limit = query.limit ?? 50
  const rows = await withPostgres(() =>
    ctx.db
      .select(userColumns)
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
  const page = rows.slice(0, limit).map(toView)
  return { users: page, nextAfter: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null }
}

async function findUser(db: Db | Tx, userId: number): Promise<AdminUserView | undefined> {
  const [row] = await db
    .select(userColumns)
    .from(users)
    .leftJoin(grants, eq(grants.userId, users.id))
    .where(eq(users.id, userId))
    .groupBy(users.id)
  return row ? toView(row) : undefined
}

export async function getUser(ctx: AppContext, userId: number): Promise<AdminUserView> {
  const user = await withPostgres(() => findUser(ctx.db, userId))
  if (!user) throw userNotFound()
  return user
}

/** Which of these users hold superuser. */
export async function superusersAmong(db: Db | Tx, userIds: number[]): Promise<Set<number>> {
  const rows = await db
    .select({ userId: grants.userId })
    .from(grants)
    .where(and(eq(grants.permission, 'superuser'), inArray(grants.userId, userIds)))
  return new Set(rows.map((r) => r.userId))
}

/** Locks the target, and every superuser first (see lockSuperusers). */
async function lockTarget(tx: Tx, userId: number, actor: Actor, forDelete: boolean) {
  await lockSuperusers(tx)
  const [target] = await tx
    .select({ id: users.id, username: users.username, disabled: users.disabled })
    .from(users)
    .where(eq(users.id, userId))
    .for(forDelete ? 'update' : 'no key update')
  if (!target) throw userNotFound()
  if ((await superusersAmong(tx, [userId])).has(userId)) {
    // The rule of POST /user/unassign, applied to disabling and deleting.
    if (actor.id !== userId) throw new AppError('protected_superuser')
    await assertAnotherSuperuser(tx, userId)
  }
  return target
}

/** Disables (ending every session at once) or enables an account. */
export async function setUserDisabled(
  ctx: AppContext,
  input: { userId: number; disabled: boolean; actor: Actor },
): Promise<{ user: AdminUserView; changed: boolean; propagated: boolean }> {
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
      const user = await findUser(tx, userId)
      if (!user) throw userNotFound()
      return { user, outboxId }
    }),
  )
  const propagated = result.outboxId === undefined ? true : await relayNow(ctx, [result.outboxId])
  if (disabled) ctx.sessionCache?.deleteUser(userId)
  return { user: result.user, changed: result.outboxId !== undefined, propagated }
}

/** Deletes an account (its grants go with it) and ends every session it had. */
export async function deleteUser(
  ctx: AppContext,
  input: { userId: number; actor: Actor },
): Promise<{ id: number; username: string; propagated: boolean }> {
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
  return { id: result.target.id, username: result.target.username, propagated }
}

/**
 * A superuser's sessions are for a superuser (or the user itself) to see and end: a session:revoke
 * holder must not be able to keep a superuser logged out, nor learn where administrators log in
 * from. 404 for unknown users.
 */
export async function assertMayManageSessionsOf(ctx: AppContext, actorId: number, userId: number): Promise<void> {
  await withPostgres(async () => {
    const [target] = await ctx.db.select({ id: users.id }).from(users).where(eq(users.id, userId))
    if (!target) throw userNotFound()
    if (actorId === userId) return
    const supers = await superusersAmong(ctx.db, [actorId, userId])
    if (supers.has(userId) && !supers.has(actorId)) {
      throw new AppError('protected_superuser')
    }
  })
}

// Creating users and changing their permissions. Every change that live sessions must see is
// written with an outbox row in the same transaction and relayed to Redis before the call returns.

import { and, eq, sql } from 'drizzle-orm'
import type { AppContext } from '../../context'
import type { Tx } from '../../db/client'
import { grants, users } from '../../db/schema'
import { AppError, withPostgres } from '../../lib/errors'
import { normalizeUsername } from '../../lib/limits'
import { type Actor, actorEventFields } from '../auth/client'
import { enqueueOutbox, relayNow } from '../outbox'
import { isPermission, type Permission } from '../permissions/catalogue'
import { hashPassword } from './password'
import { assertActorMayDelegate, assertAnotherSuperuser, assertMayActOn, mayReadUsers } from './policy'
import { grantsOf, lockSuperusers } from './repository'

/**
 * Inserts an account with no permissions and its `user_created` event (naming the actor, 0 for
 * self-registration) in the caller's transaction; 409 when the name is taken in any case.
 */
export async function insertUser(
  ctx: AppContext,
  tx: Tx,
  input: { username: string; passwordHash: string; actor: Actor; at: number },
): Promise<{ user: { id: number; username: string }; outboxId: number }> {
  const [user] = await tx
    .insert(users)
    .values({ username: input.username, passwordHash: input.passwordHash })
    .onConflictDoNothing()
    .returning({ id: users.id, username: users.username })
  if (!user) throw new AppError('username_taken', { field: 'username' })
  const outboxId = await enqueueOutbox(tx, {
    kind: 'event',
    at: input.at,
    event: { type: 'user_created', username: user.username, ...actorEventFields(ctx, input.actor, user.id) },
  })
  return { user, outboxId }
}

export async function createUser(
  ctx: AppContext,
  input: { username: string; password: string },
  actor: Actor,
): Promise<{ id: number; username: string }> {
  const passwordHash = await hashPassword(input.password)
  const at = ctx.now()
  const { user, outboxId } = await withPostgres(() =>
    ctx.db.transaction((tx) => insertUser(ctx, tx, { username: input.username, passwordHash, actor, at })),
  )
  await relayNow(ctx, [outboxId])
  return user
}

export interface PermissionChange {
  username: string
  permission: string
  actor: Actor
}

export interface PermissionChangeResult {
  userId: number
  username: string
  /** The user's permissions after the change: only for callers who may read users (policy.ts). */
  permissions?: string[]
  changed: boolean
  /** False when Redis could not be reached; the outbox relay will apply it shortly. */
  propagated: boolean
}

function parsePermission(name: string): Permission {
  if (!isPermission(name)) {
    throw new AppError('unknown_permission', { params: { permission: name }, field: 'permission' })
  }
  return name
}

/**
 * The change itself, inside the caller's transaction, with the target's row locked by the caller:
 * the grant row, the version bump and the outbox row that carries both to live sessions. Returns
 * the permissions after the change and the outbox id (undefined when nothing changed).
 */
export async function applyPermissionChange(
  ctx: AppContext,
  tx: Tx,
  input: { targetId: number; permission: Permission; mode: 'grant' | 'revoke'; actor: Actor; at: number },
): Promise<{ permissions: string[]; outboxId: number | undefined }> {
  const { targetId, permission, mode, actor, at } = input
  const changedRows =
    mode === 'grant'
      ? await tx
          .insert(grants)
          .values({ userId: targetId, permission, grantedBy: actor.id || null })
          .onConflictDoNothing()
          .returning({ userId: grants.userId })
      : await tx
          .delete(grants)
          .where(and(eq(grants.userId, targetId), eq(grants.permission, permission)))
          .returning({ userId: grants.userId })
  const permissions = await grantsOf(tx, targetId)
  if (changedRows.length === 0) return { permissions, outboxId: undefined }

  const [bumped] = await tx
    .update(users)
    .set({ permissionsVersion: sql`${users.permissionsVersion} + 1`, updatedAt: new Date() })
    .where(eq(users.id, targetId))
    .returning({ version: users.permissionsVersion })
  const outboxId = await enqueueOutbox(tx, {
    kind: 'permissions',
    at,
    userId: targetId,
    version: bumped?.version ?? 0,
    permissions,
    event: {
      type: mode === 'grant' ? 'permission_granted' : 'permission_revoked',
      permission,
      permissions,
      ...actorEventFields(ctx, actor, targetId),
    },
  })
  return { permissions, outboxId }
}

/** Grants or revokes one permission as `actor`, under the policy, and rewrites the user's live sessions. */
export async function changePermission(
  ctx: AppContext,
  change: PermissionChange,
  mode: 'grant' | 'revoke',
): Promise<PermissionChangeResult> {
  const permission = parsePermission(change.permission)
  const { actor } = change
  const at = ctx.now()
  const result = await withPostgres(() =>
    ctx.db.transaction(async (tx) => {
      await assertActorMayDelegate(tx, actor, permission)
      // Stepping down as superuser: every superuser first, in the order disable and delete use.
      if (mode === 'revoke' && permission === 'superuser') await lockSuperusers(tx)
      // Row lock: concurrent changes to one user serialise, so versions follow commit order.
      const username = normalizeUsername(change.username)
      const [target] =
        username === undefined
          ? []
          : await tx
              .select({ id: users.id, username: users.username })
              .from(users)
              .where(sql`lower(${users.username}) = ${username}`)
              .for('update')
      if (!target) throw new AppError('user_not_found', { field: 'username' })
      if (mode === 'revoke') {
        await assertMayActOn(tx, { actor, targetId: target.id, action: 'change_account' })
        if (permission === 'superuser') await assertAnotherSuperuser(tx, target.id)
      }
      const applied = await applyPermissionChange(ctx, tx, { targetId: target.id, permission, mode, actor, at })
      return { target, ...applied }
    }),
  )
  const propagated = result.outboxId === undefined ? true : await relayNow(ctx, [result.outboxId])
  ctx.sessionCache?.deleteUser(result.target.id)
  return {
    userId: result.target.id,
    username: result.target.username,
    ...(mayReadUsers(actor.permissions) ? { permissions: result.permissions } : {}),
    changed: result.outboxId !== undefined,
    propagated,
  }
}

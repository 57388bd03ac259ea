// Users and grants in PostgreSQL. Every change that live sessions must see is written with an outbox
// row in the same transaction and relayed to Redis before the request answers.

import { and, asc, eq, inArray, type SQL, sql } from 'drizzle-orm'
import type { AppContext } from '../../context'
import type { Db, Tx } from '../../db/client'
import { grants, permissions as permissionsTable, users } from '../../db/schema'
import { AppError, withPostgres } from '../../lib/errors'
import { normalizeUsername } from '../../lib/limits'
import { type Actor, actorEventFields } from '../auth/client'
import { enqueueOutbox, relayNow } from '../outbox'
import { hasPermission, isPermission, PERMISSION_NAMES, PERMISSIONS, type Permission } from '../permissions/catalogue'
import { hashPassword } from './password'

export interface UserWithPermissions {
  id: number
  username: string
  passwordHash: string
  disabled: boolean
  permissions: string[]
  permissionsVersion: number
}

export type { Actor } from '../auth/client'

/**
 * The query every login runs, prepared once per database handle: drizzle then skips building the
 * SQL, and PostgreSQL skips planning it, on each login.
 */
function loginQueries(db: Db) {
  return {
    findUser: db
      .select({
        id: users.id,
        username: users.username,
        passwordHash: users.passwordHash,
        disabled: users.disabled,
        permissionsVersion: users.permissionsVersion,
        permissions: sql<
          string[]
        >`coalesce(array_agg(${grants.permission} order by ${grants.permission}) filter (where ${grants.permission} is not null), '{}')`,
      })
      .from(users)
      .leftJoin(grants, eq(grants.userId, users.id))
      .where(sql`lower(${users.username}) = ${sql.placeholder('username')}`)
      .groupBy(users.id)
      .prepare('tessera_find_user'),
  }
}

const prepared = new WeakMap<Db, ReturnType<typeof loginQueries>>()

function queriesFor(db: Db) {
  let queries = prepared.get(db)
  if (!queries) {
    queries = loginQueries(db)
    prepared.set(db, queries)
  }
  return queries
}

/** Loads a user and their permissions by normalised username (normalizeUsername), in one query. */
export async function findUserByUsername(db: Db, username: string): Promise<UserWithPermissions | undefined> {
  const [row] = await queriesFor(db).findUser.execute({ username })
  return row
}

export async function createUser(
  ctx: AppContext,
  input: { username: string; password: string },
  actor: Actor,
): Promise<{ id: number; username: string }> {
  const passwordHash = await hashPassword(input.password)
  const at = ctx.now()
  const { user, outboxId } = await withPostgres(() =>
    ctx.db.transaction(async (tx) => {
      const [user] = await tx
        .insert(users)
        .values({ username: input.username, passwordHash })
        .onConflictDoNothing()
        .returning({ id: users.id, username: users.username })
      if (!user) throw new AppError('username_taken', { field: 'username' })
      const outboxId = await enqueueOutbox(tx, {
        kind: 'event',
        at,
        event: {
          type: 'user_created',
          username: user.username,
          ...actorEventFields(ctx, actor, user.id),
        },
      })
      return { user, outboxId }
    }),
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
  permissions: string[]
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

/** Only a superuser confers superuser; anyone else may pass on only what they hold themselves. */
function assertMayDelegate(actorPermissions: readonly string[], wanted: Permission): void {
  const allowed =
    wanted === 'superuser' ? actorPermissions.includes('superuser') : hasPermission(actorPermissions, wanted)
  if (!allowed) {
    throw new AppError('cannot_delegate', { params: { permission: wanted } })
  }
}

/** Grants or revokes one permission and rewrites the user's live sessions in the same operation. */
export async function changePermission(
  ctx: AppContext,
  change: PermissionChange,
  mode: 'grant' | 'revoke',
): Promise<PermissionChangeResult> {
  const permission = parsePermission(change.permission)
  const at = ctx.now()
  const result = await withPostgres(() =>
    ctx.db.transaction(async (tx) => {
      // The actor's grants are read from PostgreSQL, the source of truth, not from its session.
      const actorGrants = await tx
        .select({ permission: grants.permission })
        .from(grants)
        .where(eq(grants.userId, change.actor.id))
      assertMayDelegate(
        actorGrants.map((g) => g.permission),
        permission,
      )
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
        const [protectedTarget] = await tx
          .select({ userId: grants.userId })
          .from(grants)
          .where(and(eq(grants.userId, target.id), eq(grants.permission, 'superuser')))
        // A superuser can be stripped only by itself, so one compromised admin cannot lock out another.
        if (protectedTarget && target.id !== change.actor.id) {
          throw new AppError('protected_superuser')
        }
        if (permission === 'superuser') await assertAnotherSuperuser(tx, target.id)
      }

      const changedRows =
        mode === 'grant'
          ? await tx
              .insert(grants)
              .values({ userId: target.id, permission, grantedBy: change.actor.id })
              .onConflictDoNothing()
              .returning({ userId: grants.userId })
          : await tx
              .delete(grants)
              .where(and(eq(grants.userId, target.id), eq(grants.permission, permission)))
              .returning({ userId: grants.userId })
      const held = await tx
        .select({ permission: grants.permission })
        .from(grants)
        .where(eq(grants.userId, target.id))
        .orderBy(grants.permission)
      const permissions = held.map((g) => g.permission)
      if (changedRows.length === 0) return { target, permissions, changed: false, outboxId: undefined }

      const [bumped] = await tx
        .update(users)
        .set({ permissionsVersion: sql`${users.permissionsVersion} + 1`, updatedAt: new Date() })
        .where(eq(users.id, target.id))
        .returning({ version: users.permissionsVersion })
      const outboxId = await enqueueOutbox(tx, {
        kind: 'permissions',
        at,
        userId: target.id,
        version: bumped?.version ?? 0,
        permissions,
        event: {
          type: mode === 'grant' ? 'permission_granted' : 'permission_revoked',
          permission,
          permissions,
          ...actorEventFields(ctx, change.actor, target.id),
        },
      })
      return { target, permissions, changed: true, outboxId }
    }),
  )
  const propagated = result.outboxId === undefined ? true : await relayNow(ctx, [result.outboxId])
  ctx.sessionCache?.deleteUser(result.target.id)
  return {
    userId: result.target.id,
    username: result.target.username,
    permissions: result.permissions,
    changed: result.changed,
    propagated,
  }
}

/**
 * Updates the user row and bumps its version; returns the new version. Sessions read at an older
 * version are then refused by createSession once the outbox row naming this version is relayed.
 */
export async function updateBumpingVersion(
  tx: Tx,
  userId: number,
  set: Partial<typeof users.$inferInsert>,
  where?: SQL,
): Promise<number | undefined> {
  const [row] = await tx
    .update(users)
    .set({ ...set, permissionsVersion: sql`${users.permissionsVersion} + 1`, updatedAt: new Date() })
    .where(where ? and(eq(users.id, userId), where) : eq(users.id, userId))
    .returning({ version: users.permissionsVersion })
  return row?.version
}

/**
 * Locks every superuser's row, in id order, so that two superusers stepping down (or being disabled
 * or deleted) at the same moment serialise and the second one sees that it is the last. NO KEY
 * UPDATE: it does not block the key-share locks that grant inserts take on the granting user.
 */
export async function lockSuperusers(tx: Tx): Promise<void> {
  await tx
    .select({ id: users.id })
    .from(users)
    .where(inArray(users.id, tx.select({ id: grants.userId }).from(grants).where(eq(grants.permission, 'superuser'))))
    .orderBy(asc(users.id))
    .for('no key update')
}

/** The last superuser cannot lose the role: there would be nobody left to administer the system. */
export async function assertAnotherSuperuser(tx: Tx, losingUserId: number): Promise<void> {
  const [row] = await tx
    .select({ count: sql<number>`count(*)::int` })
    .from(grants)
    .innerJoin(users, eq(users.id, grants.userId))
    .where(and(eq(grants.permission, 'superuser'), eq(users.disabled, false), sql`${users.id} <> ${losingUserId}`))
  if ((row?.count ?? 0) === 0) {
    throw new AppError('last_superuser')
  }
}

/** Seeds the permission catalogue and makes sure the configured admin exists and is superuser. */
export async function ensureAdmin(ctx: AppContext): Promise<void> {
  const { db, config, logger } = ctx
  await db
    .insert(permissionsTable)
    .values(PERMISSION_NAMES.map((name) => ({ name, description: PERMISSIONS[name] })))
    .onConflictDoUpdate({ target: permissionsTable.name, set: { description: sql`excluded.description` } })
  const adminName = normalizeUsername(config.adminUsername) ?? config.adminUsername
  let admin = await findUserByUsername(db, adminName)
  if (!admin) {
    const passwordHash = await hashPassword(config.adminPassword)
    await db.insert(users).values({ username: config.adminUsername, passwordHash }).onConflictDoNothing()
    admin = await findUserByUsername(db, adminName)
    if (!admin) throw new Error('admin user could not be created')
    logger.info('admin user created', { username: config.adminUsername })
  }
  if (!admin.permissions.includes('superuser')) {
    await db.insert(grants).values({ userId: admin.id, permission: 'superuser' }).onConflictDoNothing()
  }
  if (config.adminPasswordIsDefault) {
    logger.warn(
      `ADMIN_PASSWORD is not set: the "${config.adminUsername}" account uses the development default password "admin". Set ADMIN_PASSWORD before exposing this server; NODE_ENV=production refuses to start without it.`,
    )
  }
}

// Users and grants in PostgreSQL: the reads and row-level steps the services compose.

import { and, asc, eq, inArray, type SQL, sql } from 'drizzle-orm'
import type { Db, Tx } from '../../db/client'
import { grants, users } from '../../db/schema'

export interface UserWithPermissions {
  id: number
  username: string
  passwordHash: string
  disabled: boolean
  permissions: string[]
  permissionsVersion: number
}

/** A user as administrators see it. */
export interface UserView {
  id: number
  username: string
  disabled: boolean
  permissions: string[]
  createdAt: string
  updatedAt: string
}

/** The user's grants as one sorted array (empty, not null, without any). */
const permissionsColumn = sql<
  string[]
>`coalesce(array_agg(${grants.permission} order by ${grants.permission}) filter (where ${grants.permission} is not null), '{}')`

export const userViewColumns = {
  id: users.id,
  username: users.username,
  disabled: users.disabled,
  createdAt: users.createdAt,
  updatedAt: users.updatedAt,
  permissions: permissionsColumn,
}

export function toUserView(row: {
  id: number
  username: string
  disabled: boolean
  permissions: string[]
  createdAt: Date
  updatedAt: Date
}): UserView {
  return {
    id: row.id,
    username: row.username,
    disabled: row.disabled,
    permissions: row.permissions,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  }
}

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
        permissions: permissionsColumn,
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

export async function findUserView(db: Db | Tx, userId: number): Promise<UserView | undefined> {
  const [row] = await db
    .select(userViewColumns)
    .from(users)
    .leftJoin(grants, eq(grants.userId, users.id))
    .where(eq(users.id, userId))
    .groupBy(users.id)
  return row ? toUserView(row) : undefined
}

/** A user's grants, sorted. */
export async function grantsOf(db: Db | Tx, userId: number): Promise<string[]> {
  const rows = await db
    .select({ permission: grants.permission })
    .from(grants)
    .where(eq(grants.userId, userId))
    .orderBy(grants.permission)
  return rows.map((row) => row.permission)
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

/** Which of these users hold superuser. */
export async function superusersAmong(db: Db | Tx, userIds: number[]): Promise<Set<number>> {
  const rows = await db
    .select({ userId: grants.userId })
    .from(grants)
    .where(and(eq(grants.permission, 'superuser'), inArray(grants.userId, userIds)))
  return new Set(rows.map((r) => r.userId))
}

/** How many enabled superusers there are besides `userId`. */
export async function countOtherActiveSuperusers(db: Db | Tx, userId: number): Promise<number> {
  const [row] = await db
    .select({ count: sql<number>`count(*)::int` })
    .from(grants)
    .innerJoin(users, eq(users.id, grants.userId))
    .where(and(eq(grants.permission, 'superuser'), eq(users.disabled, false), sql`${users.id} <> ${userId}`))
  return row?.count ?? 0
}

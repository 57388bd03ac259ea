// Boot-time seeding: the permission catalogue, and a first superuser on a database that has none.

import { eq, sql } from 'drizzle-orm'
import type { AppContext } from '../../context'
import type { Db } from '../../db/client'
import { grants, permissions as permissionsTable } from '../../db/schema'
import { normalizeUsername } from '../../lib/limits'
import { systemActor } from '../auth/client'
import { relayNow } from '../outbox'
import { PERMISSION_NAMES, PERMISSIONS } from '../permissions/catalogue'
import { hashPassword } from './password'
import { findUserByUsername } from './repository'
import { applyPermissionChange, insertUser } from './service'

// Arbitrary constant shared by every instance: instances booting together seed once.
const SEED_LOCK_ID = 7_341_402_119

const hasSuperuser = async (ctx: AppContext, db: Pick<AppContext['db'], 'select'> = ctx.db) =>
  (await db.select({ userId: grants.userId }).from(grants).where(eq(grants.permission, 'superuser')).limit(1)).length >
  0

/** Writes the permission catalogue (grants refer to it): PostgreSQL only, idempotent. */
export async function seedPermissionCatalogue(db: Db): Promise<void> {
  await db
    .insert(permissionsTable)
    .values(PERMISSION_NAMES.map((name) => ({ name, description: PERMISSIONS[name] })))
    .onConflictDoUpdate({ target: permissionsTable.name, set: { description: sql`excluded.description` } })
}

/**
 * Seeds the permission catalogue, and the configured admin as superuser only when no superuser
 * exists: a deliberately deleted admin stays deleted while another superuser remains, and the
 * seeding goes through the same steps as any other change (user_created and permission_granted
 * events, the outbox, a version bump). An existing account that merely has the admin's name is
 * never promoted: its password is not the configured one.
 */
export async function seedDatabase(ctx: AppContext): Promise<void> {
  const { db, config, logger } = ctx
  await seedPermissionCatalogue(db)
  if (config.adminPasswordIsDefault) {
    logger.warn(
      `ADMIN_PASSWORD is not set: a seeded "${config.adminUsername}" account gets the development default password "admin". Set ADMIN_PASSWORD before exposing this server; NODE_ENV=production refuses to start without it.`,
    )
  }
  if (await hasSuperuser(ctx)) return

  const passwordHash = await hashPassword(config.adminPassword)
  const actor = systemActor()
  const at = ctx.now()
  const outboxIds = await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${SEED_LOCK_ID})`)
    if (await hasSuperuser(ctx, tx)) return []
    const name = normalizeUsername(config.adminUsername) ?? config.adminUsername
    if (await findUserByUsername(db, name)) {
      logger.error('no superuser exists and ADMIN_USERNAME names an existing account; it was not promoted', {
        username: config.adminUsername,
      })
      return []
    }
    const created = await insertUser(ctx, tx, { username: config.adminUsername, passwordHash, actor, at })
    const granted = await applyPermissionChange(ctx, tx, {
      targetId: created.user.id,
      permission: 'superuser',
      mode: 'grant',
      actor,
      at,
    })
    logger.info('superuser seeded', { username: created.user.username, id: created.user.id })
    return [created.outboxId, ...(granted.outboxId === undefined ? [] : [granted.outboxId])]
  })
  if (outboxIds.length > 0) await relayNow(ctx, outboxIds)
}

// Boot-time database preparation: create the database if missing, then apply committed migrations.

import { fileURLToPath } from 'node:url'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import { openPostgres } from './client'

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url))
// Arbitrary constant shared by every instance: whoever holds it migrates, the others wait.
const MIGRATION_LOCK_ID = 7_341_402_118

/** Creates the database named in `url` when it does not exist yet. Safe to race. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url)
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''))
  if (!name) return
  const probe = openPostgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} })
  try {
    await probe`select 1`
    return
  } catch (error) {
    // 3D000: invalid_catalog_name, i.e. the database does not exist; anything else is real.
    if ((error as { code?: string }).code !== '3D000') throw error
  } finally {
    await probe.end({ timeout: 1 })
  }
  const adminUrl = new URL(url)
  adminUrl.pathname = '/postgres'
  const admin = openPostgres(adminUrl.toString(), { max: 1, connect_timeout: 5, onnotice: () => {} })
  try {
    await admin.unsafe(`create database "${name.replaceAll('"', '""')}"`)
  } catch (error) {
    // Another instance created it between our probe and our CREATE: that is the outcome we wanted.
    const code = (error as { code?: string }).code
    if (code !== '42P04' && code !== '23505') throw error
  } finally {
    await admin.end({ timeout: 1 })
  }
}

/**
 * Applies drizzle/ under a session-level advisory lock, so instances booting together against an
 * empty database run the migrations once while the others wait and then find nothing to do.
 */
export async function migrateDatabase(url: string): Promise<void> {
  const sql = openPostgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} })
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_ID})`
    try {
      await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_FOLDER })
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

// Database preparation: create the database if missing, apply the committed migrations (embedded
// in the program, see migrations.ts), or tell which of them a database still lacks.

import { PgDialect, type PgSession } from 'drizzle-orm/pg-core'
import { drizzle } from 'drizzle-orm/postgres-js'
import type postgres from 'postgres'
import { openPostgres } from './client'
import { type EmbeddedMigration, MIGRATIONS } from './migrations'

// drizzle's defaults, named because the status check below reads the same table.
const MIGRATIONS_SCHEMA = 'drizzle'
const MIGRATIONS_TABLE = '__drizzle_migrations'
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
 * Applies the embedded migrations under a session-level advisory lock, so instances booting
 * together against an empty database run them once while the others wait and then find nothing to
 * do. drizzle's own migrator does the work (`migrate` from drizzle-orm/postgres-js/migrator is this
 * call after reading a folder): the same transaction and the same bookkeeping table. Returns the
 * migrations it applied.
 */
export async function migrateDatabase(url: string): Promise<EmbeddedMigration[]> {
  const sql = openPostgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} })
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_ID})`
    try {
      const pending = await pendingOn(sql)
      // The session's relational-schema generics differ from the ones migrate() declares (it takes
      // any schema); drizzle's own migrator passes its session the same way.
      const session = drizzle(sql)._.session as unknown as PgSession
      await new PgDialect().migrate([...MIGRATIONS], session, {
        migrationsFolder: '(embedded)',
        migrationsSchema: MIGRATIONS_SCHEMA,
        migrationsTable: MIGRATIONS_TABLE,
      })
      return pending
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/**
 * The embedded migrations a database has not applied yet, by drizzle's own rule: those newer than
 * the last one recorded in its table (none recorded: all of them). Throws what PostgreSQL throws
 * when the database cannot be reached or does not exist (code 3D000).
 */
export async function pendingMigrations(url: string): Promise<EmbeddedMigration[]> {
  const sql = openPostgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} })
  try {
    return await pendingOn(sql)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

async function pendingOn(sql: postgres.Sql): Promise<EmbeddedMigration[]> {
  const [table] = await sql<{ name: string | null }[]>`
    select to_regclass(${`"${MIGRATIONS_SCHEMA}"."${MIGRATIONS_TABLE}"`})::text as name`
  if (!table?.name) return [...MIGRATIONS]
  const [last] = await sql<{ createdAt: string | null }[]>`
    select max(created_at)::text as "createdAt" from ${sql(MIGRATIONS_SCHEMA)}.${sql(MIGRATIONS_TABLE)}`
  const appliedUpTo = last?.createdAt == null ? -1 : Number(last.createdAt)
  return MIGRATIONS.filter((migration) => migration.folderMillis > appliedUpTo)
}

// The migrations the program embeds are exactly drizzle/ (a generated migration cannot be forgotten
// in src/db/migrations.ts), and applying them is what applying the folder was: same statements,
// same hashes, same bookkeeping, so databases migrated before keep working.

import { afterAll, describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import postgres from 'postgres'
import { ensureDatabase, migrateDatabase, pendingMigrations } from '../src/db/migrate'
import { EMBEDDED_TAGS, MIGRATIONS } from '../src/db/migrations'
import { databaseUrlFor, suffix } from './services'

const FOLDER = join(import.meta.dir, '..', 'drizzle')
const created: string[] = []

afterAll(async () => {
  const admin = postgres(databaseUrlFor('postgres'), { max: 1, onnotice: () => {} })
  try {
    for (const name of created) await admin.unsafe(`drop database if exists "${name}" with (force)`)
  } finally {
    await admin.end({ timeout: 5 })
  }
})

function freshDatabase(): string {
  const name = `tessera_test_migrations_${suffix()}`
  created.push(name)
  return databaseUrlFor(name)
}

describe('embedded migrations', () => {
  test('every .sql file under drizzle/ is embedded, and nothing else', () => {
    const files = readdirSync(FOLDER)
      .filter((file) => file.endsWith('.sql'))
      .map((file) => file.replace(/\.sql$/, ''))
      .sort()
    expect([...EMBEDDED_TAGS].sort()).toEqual(files)
  })

  test('they are what drizzle reads from the folder: statements, hashes, timestamps, in journal order', () => {
    const fromDisk = readMigrationFiles({ migrationsFolder: FOLDER })
    expect(MIGRATIONS.map(({ tag: _, ...meta }) => meta)).toEqual(fromDisk)
  })

  test('a fresh database has them all pending; migrated, none; the table records each once', async () => {
    const url = freshDatabase()
    await ensureDatabase(url)
    expect((await pendingMigrations(url)).map((m) => m.tag)).toEqual(MIGRATIONS.map((m) => m.tag))
    await migrateDatabase(url)
    await migrateDatabase(url)
    expect(await pendingMigrations(url)).toEqual([])
    const sql = postgres(url, { max: 1, onnotice: () => {} })
    try {
      const rows = await sql<{ hash: string }[]>`select hash from drizzle.__drizzle_migrations order by created_at`
      expect(rows.map((row) => row.hash)).toEqual(MIGRATIONS.map((m) => m.hash))
      // Without the newest record, drizzle would apply that migration again: it is pending.
      await sql`delete from drizzle.__drizzle_migrations where created_at = ${MIGRATIONS.at(-1)?.folderMillis ?? 0}`
      expect((await pendingMigrations(url)).map((m) => m.tag)).toEqual([MIGRATIONS.at(-1)?.tag ?? ''])
    } finally {
      await sql.end({ timeout: 5 })
    }
  })

  test('a database that does not exist is an error PostgreSQL names (3D000), not "all pending"', async () => {
    const url = databaseUrlFor(`tessera_test_missing_${suffix()}`)
    await expect(pendingMigrations(url)).rejects.toMatchObject({ code: '3D000' })
  })
})

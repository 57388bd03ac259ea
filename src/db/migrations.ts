// The committed migrations under drizzle/, embedded in the program: `bun build --compile` makes a
// binary with no drizzle/ folder beside it. Text imports are embedded as they are; the journal is
// imported as JSON. test/migrations.test.ts checks this list against drizzle/, so a new migration
// cannot be generated and forgotten here.

import { createHash } from 'node:crypto'
import type { MigrationMeta } from 'drizzle-orm/migrator'
import init from '../../drizzle/0000_init.sql' with { type: 'text' }
import auditDeadLetters from '../../drizzle/0001_audit_dead_letters.sql' with { type: 'text' }
import outboxClaims from '../../drizzle/0002_outbox_claims.sql' with { type: 'text' }
import journal from '../../drizzle/meta/_journal.json' with { type: 'json' }

/** Each migration's SQL by its journal tag: one line per file in drizzle/. */
const SQL_BY_TAG: Readonly<Record<string, string>> = {
  '0000_init': init,
  '0001_audit_dead_letters': auditDeadLetters,
  '0002_outbox_claims': outboxClaims,
}

export interface EmbeddedMigration extends MigrationMeta {
  /** The journal's name for it, as drizzle-kit named the file. */
  tag: string
}

/**
 * The journal's migrations in order, in the shape drizzle's readMigrationFiles returns for the
 * drizzle/ folder (statements split at the breakpoints, the SHA-256 of the file, the journal's
 * timestamp): the migrator and its `drizzle.__drizzle_migrations` table see exactly what they saw
 * when migrations were read from disk, so databases migrated either way are the same.
 */
export const MIGRATIONS: readonly EmbeddedMigration[] = journal.entries.map((entry) => {
  const query = SQL_BY_TAG[entry.tag]
  if (query === undefined) throw new Error(`migration ${entry.tag} is in the journal but not in src/db/migrations.ts`)
  return {
    tag: entry.tag,
    sql: query.split('--> statement-breakpoint'),
    bps: entry.breakpoints,
    folderMillis: entry.when,
    hash: createHash('sha256').update(query).digest('hex'),
  }
})

/** The migration files this program embeds, by tag (for the test that compares them with drizzle/). */
export const EMBEDDED_TAGS: readonly string[] = Object.keys(SQL_BY_TAG)

// Every PostgreSQL table Tessera owns; drizzle-kit generates drizzle/ from this file.

import { sql } from 'drizzle-orm'
import {
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core'

export const users = pgTable(
  'users',
  {
    id: serial('id').primaryKey(),
    username: text('username').notNull(),
    passwordHash: text('password_hash').notNull(),
    disabled: boolean('disabled').notNull().default(false),
    // Bumped by every grant and revoke, so Redis can tell a newer permission set from a stale one,
    // and by disable, delete and password change, so it can refuse logins that read the user before.
    permissionsVersion: integer('permissions_version').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // Usernames are unique regardless of case, so "Alice" and "alice" cannot both exist.
  (table) => [uniqueIndex('users_username_lower_idx').on(sql`lower(${table.username})`)],
)

export const permissions = pgTable('permissions', {
  name: text('name').primaryKey(),
  description: text('description').notNull(),
})

export const grants = pgTable(
  'grants',
  {
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    permission: text('permission')
      .notNull()
      .references(() => permissions.name, { onDelete: 'cascade' }),
    grantedBy: integer('granted_by').references(() => users.id, { onDelete: 'set null' }),
    grantedAt: timestamp('granted_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.userId, table.permission] })],
)

/**
 * Changes committed in PostgreSQL that must still reach Redis (live sessions and the event stream).
 * Written in the same transaction as the change and relayed until applied, so a Redis outage at
 * commit time loses nothing. A relayer claims a row for a while (`claimed_until`) and applies it
 * outside any transaction; a row that keeps failing for a reason other than an outage is set aside
 * (`failed_at`, `last_error`) after a few attempts; applied rows are pruned after a day.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    kind: text('kind').notNull(),
    payload: jsonb('payload').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    attempts: integer('attempts').notNull().default(0),
    appliedAt: timestamp('applied_at', { withTimezone: true }),
    claimedUntil: timestamp('claimed_until', { withTimezone: true }),
    failedAt: timestamp('failed_at', { withTimezone: true }),
    lastError: text('last_error'),
  },
  (table) => [
    index('outbox_pending_idx').on(table.id).where(sql`${table.appliedAt} is null and ${table.failedAt} is null`),
    index('outbox_applied_at_idx').on(table.appliedAt).where(sql`${table.appliedAt} is not null`),
  ],
)

/** Durable audit trail, one row per stream entry; stream_id makes replays idempotent. */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    streamId: text('stream_id').notNull().unique(),
    type: text('type').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actorId: integer('actor_id'),
    subjectId: integer('subject_id'),
    data: jsonb('data').notNull(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    index('audit_events_at_idx').on(table.at),
    index('audit_events_subject_at_idx').on(table.subjectId, table.at),
    index('audit_events_type_at_idx').on(table.type, table.at),
  ],
)

/**
 * Stream entries PostgreSQL refused to record as audit_events (a value jsonb cannot hold, a time out
 * of range): set aside here so the entries after them are still recorded. `fields` holds the entry
 * made safe to store; `raw` is the exact entry, as base64 of its JSON, for forensics.
 */
export const auditDeadLetters = pgTable('audit_dead_letters', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  streamId: text('stream_id').notNull().unique(),
  fields: jsonb('fields').notNull(),
  raw: text('raw').notNull(),
  error: text('error').notNull(),
  recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
})

export type User = typeof users.$inferSelect

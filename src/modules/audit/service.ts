// Reading the audit trail: filtered by user, type and time, newest first, with a keyset cursor.

import { and, desc, eq, gte, lte, or, type SQL, sql } from 'drizzle-orm'
import type { Db } from '../../db/client'
import { auditEvents } from '../../db/schema'
import { AppError } from '../../lib/errors'

export interface AuditQuery {
  userId?: number
  type?: string
  from?: Date
  to?: Date
  limit: number
  cursor?: string
}

export interface AuditPage {
  events: {
    id: string
    type: string
    at: string
    actorId: number | null
    subjectId: number | null
    data: Record<string, unknown>
  }[]
  nextCursor: string | null
}

const invalid = (field: string, detail: string) =>
  new AppError('validation_failed', { params: { detail: `${field}: ${detail}` }, field })

// Instants both JavaScript's Date and PostgreSQL's timestamptz write and read as ISO 8601 text.
// The date-time format lets through what neither takes (year 0, a leap second, +23:59 offsets
// that land in year 0), so the parsed value is bounded too.
const EARLIEST_MS = Date.parse('0001-01-01T00:00:00.000Z')
const LATEST_MS = Date.parse('9999-12-31T23:59:59.999Z')
const inRange = (ms: number) => ms >= EARLIEST_MS && ms <= LATEST_MS

/** A query's date-time as a Date PostgreSQL accepts, or a 422 naming the field. */
export function instantOf(text: string, field: string): Date {
  const ms = Date.parse(text)
  if (!inRange(ms)) throw invalid(field, 'must be a date-time from year 1 to 9999')
  return new Date(ms)
}

// The cursor is "<at in ms>.<row id>" of the last row returned: stable under concurrent inserts.
function parseCursor(cursor: string): { at: Date; id: number } {
  const match = /^(\d{1,16})\.(\d{1,19})$/.exec(cursor)
  const at = Number(match?.[1])
  const id = Number(match?.[2])
  if (!match || !inRange(at) || !Number.isSafeInteger(id)) throw invalid('cursor', 'not a cursor this API returned')
  return { at: new Date(at), id }
}

export async function listAuditEvents(db: Db, query: AuditQuery): Promise<AuditPage> {
  const conditions: SQL[] = []
  if (query.userId !== undefined) {
    conditions.push(or(eq(auditEvents.subjectId, query.userId), eq(auditEvents.actorId, query.userId)) as SQL)
  }
  if (query.type) conditions.push(eq(auditEvents.type, query.type))
  if (query.from) conditions.push(gte(auditEvents.at, query.from))
  if (query.to) conditions.push(lte(auditEvents.at, query.to))
  if (query.cursor) {
    const { at, id } = parseCursor(query.cursor)
    conditions.push(sql`(${auditEvents.at}, ${auditEvents.id}) < (${at.toISOString()}::timestamptz, ${id}::bigint)`)
  }
  const rows = await db
    .select()
    .from(auditEvents)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(auditEvents.at), desc(auditEvents.id))
    .limit(query.limit + 1)
  const page = rows.slice(0, query.limit)
  const last = page[page.length - 1]
  return {
    events: page.map((row) => ({
      id: row.streamId,
      type: row.type,
      at: row.at.toISOString(),
      actorId: row.actorId,
      subjectId: row.subjectId,
      data: row.data as Record<string, unknown>,
    })),
    nextCursor: rows.length > query.limit && last ? `${last.at.getTime()}.${last.id}` : null,
  }
}

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

// The cursor is "<at in ms>.<row id>" of the last row returned: stable under concurrent inserts.
function parseCursor(cursor: string): { at: Date; id: number } {
  const match = /^(\d{1,16})\.(\d{1,19})$/.exec(cursor)
  if (!match) {
    throw new AppError('validation_failed', {
      params: { detail: 'cursor: not a cursor this API returned' },
      field: 'cursor',
    })
  }
  return { at: new Date(Number(match[1])), id: Number(match[2]) }
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

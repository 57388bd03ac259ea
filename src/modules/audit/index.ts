// GET /audit: the durable audit trail, for holders of audit:read.

import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { withPostgres } from '../../lib/errors'
import { ROW_ID_MAX } from '../../lib/limits'
import { errors } from '../../lib/responses'
import { EVENT_TYPES } from '../../store'
import type { authPlugin } from '../auth/plugin'
import { instantOf, listAuditEvents } from './service'

const AuditEvent = t.Object({
  id: t.String({ description: 'Redis Stream entry id; unique.' }),
  type: t.String(),
  at: t.String({ format: 'date-time' }),
  actorId: t.Nullable(t.Integer()),
  subjectId: t.Nullable(t.Integer()),
  data: t.Record(t.String(), t.Unknown(), {
    description: 'Instance, IP, user agent, session hash and type-specific fields.',
  }),
})

export function auditRoutes(ctx: AppContext, auth: ReturnType<typeof authPlugin>) {
  return new Elysia({ name: 'tessera.routes.audit', seed: ctx.id, tags: ['audit'] }).use(auth).get(
    '/audit',
    ({ query }) =>
      withPostgres(() =>
        listAuditEvents(ctx.db, {
          userId: query.userId,
          type: query.type,
          from: query.from ? instantOf(query.from, 'from') : undefined,
          to: query.to ? instantOf(query.to, 'to') : undefined,
          limit: query.limit ?? 50,
          cursor: query.cursor,
        }),
      ),
    {
      auth: 'audit:read',
      query: t.Object(
        {
          userId: t.Optional(
            t.Integer({
              minimum: 1,
              maximum: ROW_ID_MAX,
              description: 'Events where this user is the subject or the actor.',
            }),
          ),
          type: t.Optional(t.Union(EVENT_TYPES.map((type) => t.Literal(type)))),
          from: t.Optional(
            t.String({ format: 'date-time', description: 'Inclusive lower bound on the event time, years 1 to 9999.' }),
          ),
          to: t.Optional(
            t.String({ format: 'date-time', description: 'Inclusive upper bound on the event time, years 1 to 9999.' }),
          ),
          limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50 })),
          cursor: t.Optional(t.String({ maxLength: 40, description: 'nextCursor from the previous page.' })),
        },
        { additionalProperties: false },
      ),
      response: {
        200: t.Object({ events: t.Array(AuditEvent), nextCursor: t.Nullable(t.String()) }),
        ...errors(401, 403, 422),
      },
      detail: {
        summary: 'Read the audit trail',
        description:
          'Events recorded by the audit consumer (`bun run audit`), newest first. Needs audit:read. Pass nextCursor as cursor for the next page.',
      },
    },
  )
}
